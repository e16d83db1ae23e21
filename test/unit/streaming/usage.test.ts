import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { usageFromJsonChunks } from '../../../src/streaming/json-usage-tail.js';
import { usageFromAnthropic, usageFromAnthropicEvent, usageFromAnthropicJsonBuffer, usageFromAnthropicMessage, usageFromJsonBuffer, usageFromObject } from '../../../src/streaming/usage.js';

describe('usageFromObject', () => {
  it('reads a chat completion body with cached and reasoning details', () => {
    const body = {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1741570283,
      model: 'gpt-4o-2024-08-06',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hi', refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
      usage: {
        prompt_tokens: 1117,
        completion_tokens: 46,
        total_tokens: 1163,
        prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 12, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      },
      service_tier: 'default',
      system_fingerprint: 'fp_1',
    };
    assert.deepEqual(usageFromObject(body), { promptTokens: 1117, completionTokens: 46, totalTokens: 1163, cachedTokens: 1024, reasoningTokens: 12 });
  });

  it('reads the include_usage stream chunk', () => {
    const chunk = {
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'gpt-4o-mini',
      choices: [],
      usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
    };
    assert.deepEqual(usageFromObject(chunk), { promptTokens: 9, completionTokens: 2, totalTokens: 11, cachedTokens: 0, reasoningTokens: 0 });
  });

  it('reads a legacy completions body', () => {
    const body = {
      id: 'cmpl-1',
      object: 'text_completion',
      model: 'gpt-3.5-turbo-instruct',
      choices: [{ text: 'Hello', index: 0, logprobs: null, finish_reason: 'length' }],
      usage: { prompt_tokens: 5, completion_tokens: 16, total_tokens: 21 },
    };
    assert.deepEqual(usageFromObject(body), { promptTokens: 5, completionTokens: 16, totalTokens: 21, cachedTokens: 0, reasoningTokens: 0 });
  });

  it('reads an embeddings body, which has no completion tokens', () => {
    const body = { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1] }], model: 'text-embedding-3-small', usage: { prompt_tokens: 8, total_tokens: 8 } };
    assert.deepEqual(usageFromObject(body), { promptTokens: 8, completionTokens: 0, totalTokens: 8, cachedTokens: 0, reasoningTokens: 0 });
  });

  it('reads DeepSeek prompt_cache_hit_tokens as cached tokens when details are absent', () => {
    const body = {
      id: 'x',
      object: 'chat.completion',
      choices: [],
      usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120, prompt_cache_hit_tokens: 64, prompt_cache_miss_tokens: 36 },
    };
    assert.equal(usageFromObject(body)?.cachedTokens, 64);
  });

  it('prefers prompt_tokens_details.cached_tokens over DeepSeek hit tokens', () => {
    const usage = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120, prompt_tokens_details: { cached_tokens: 32 }, prompt_cache_hit_tokens: 64 };
    assert.equal(usageFromObject({ usage })?.cachedTokens, 32);
  });

  it('reads a Responses API body', () => {
    const body = {
      id: 'resp_1',
      object: 'response',
      status: 'completed',
      error: null,
      output: [],
      usage: { input_tokens: 36, input_tokens_details: { cached_tokens: 4, cache_write_tokens: 0 }, output_tokens: 87, output_tokens_details: { reasoning_tokens: 64 }, total_tokens: 123 },
    };
    assert.deepEqual(usageFromObject(body), { promptTokens: 36, completionTokens: 87, totalTokens: 123, cachedTokens: 4, reasoningTokens: 64 });
  });

  for (const type of ['response.completed', 'response.incomplete', 'response.failed']) {
    it(`reads response.usage from a ${type} stream event`, () => {
      const event = {
        type,
        sequence_number: 9,
        response: { id: 'resp_1', object: 'response', status: type.slice('response.'.length), usage: { input_tokens: 10, output_tokens: 5, total_tokens: 15 } },
      };
      assert.deepEqual(usageFromObject(event), { promptTokens: 10, completionTokens: 5, totalTokens: 15, cachedTokens: 0, reasoningTokens: 0 });
    });
  }

  it('returns undefined for a Responses event whose usage is null', () => {
    assert.equal(usageFromObject({ type: 'response.created', sequence_number: 0, response: { id: 'resp_1', status: 'in_progress', usage: null } }), undefined);
  });

  it('reads Moonshot usage from choices[0].usage', () => {
    const chunk = {
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      model: 'kimi-k2',
      choices: [{ index: 0, delta: {}, finish_reason: 'stop', usage: { prompt_tokens: 19, completion_tokens: 13, total_tokens: 32, cached_tokens: 0 } }],
    };
    assert.deepEqual(usageFromObject(chunk), { promptTokens: 19, completionTokens: 13, totalTokens: 32, cachedTokens: 0, reasoningTokens: 0 });
  });

  it('reads Groq usage from x_groq.usage', () => {
    const chunk = {
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      model: 'llama-3.1-8b-instant',
      choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }],
      x_groq: { id: 'req_1', usage: { queue_time: 0.02, prompt_tokens: 18, prompt_time: 0.001, completion_tokens: 7, completion_time: 0.005, total_tokens: 25, total_time: 0.006 } },
    };
    assert.deepEqual(usageFromObject(chunk), { promptTokens: 18, completionTokens: 7, totalTokens: 25, cachedTokens: 0, reasoningTokens: 0 });
  });

  it('reads audio transcription token usage', () => {
    const body = { text: 'Hello there.', usage: { type: 'tokens', input_tokens: 14, input_token_details: { text_tokens: 0, audio_tokens: 14 }, output_tokens: 45, total_tokens: 59 } };
    assert.deepEqual(usageFromObject(body), { promptTokens: 14, completionTokens: 45, totalTokens: 59, cachedTokens: 0, reasoningTokens: 0, audioPromptTokens: 14 });
  });

  it("reads Realtime's response.done usage: cached input, and the audio parts of input (uncached) and output", () => {
    const event = {
      type: 'response.done',
      response: {
        id: 'resp_1',
        usage: { total_tokens: 95, input_tokens: 60, output_tokens: 35, input_token_details: { text_tokens: 20, audio_tokens: 40, cached_tokens: 16, cached_tokens_details: { text_tokens: 6, audio_tokens: 10 } }, output_token_details: { text_tokens: 10, audio_tokens: 25 } },
      },
    };
    assert.deepEqual(usageFromObject(event), { promptTokens: 60, completionTokens: 35, totalTokens: 95, cachedTokens: 16, reasoningTokens: 0, audioPromptTokens: 30, audioCompletionTokens: 25 });
  });

  it('returns undefined for duration-based transcription usage', () => {
    assert.equal(usageFromObject({ text: 'Hi', usage: { type: 'duration', seconds: 3 } }), undefined);
  });

  it('reads image generation usage', () => {
    const body = {
      created: 1713833628,
      data: [{ b64_json: 'AAAA' }],
      usage: { total_tokens: 100, input_tokens: 50, output_tokens: 50, input_tokens_details: { text_tokens: 10, image_tokens: 40 } },
    };
    assert.deepEqual(usageFromObject(body), { promptTokens: 50, completionTokens: 50, totalTokens: 100, cachedTokens: 0, reasoningTokens: 0 });
  });

  it('returns undefined for usage null and for bodies without usage', () => {
    assert.equal(usageFromObject({ id: 'c', choices: [], usage: null }), undefined);
    assert.equal(usageFromObject({ id: 'modr-1', model: 'omni-moderation-latest', results: [] }), undefined);
    assert.equal(usageFromObject(null), undefined);
    assert.equal(usageFromObject([{ usage: { prompt_tokens: 1 } }]), undefined);
    assert.equal(usageFromObject('usage'), undefined);
  });

  it('fills missing counts with 0 and a missing total with prompt + completion', () => {
    assert.deepEqual(usageFromObject({ usage: { prompt_tokens: 7, completion_tokens: 3 } }), { promptTokens: 7, completionTokens: 3, totalTokens: 10, cachedTokens: 0, reasoningTokens: 0 });
  });

  it('treats negative and non-numeric counts as 0', () => {
    assert.deepEqual(usageFromObject({ usage: { prompt_tokens: -5, completion_tokens: '3', total_tokens: -1, prompt_tokens_details: { cached_tokens: -2 } } }), {
      promptTokens: 0,
      completionTokens: 0,
      totalTokens: 0,
      cachedTokens: 0,
      reasoningTokens: 0,
    });
    assert.equal(usageFromObject({ usage: { prompt_tokens: Infinity, completion_tokens: 2 } })?.promptTokens, 0);
  });
});

describe('usageFromJsonBuffer', () => {
  it('parses a body that contains "usage"', () => {
    const body = Buffer.from('{"object":"list","data":[],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}');
    assert.deepEqual(usageFromJsonBuffer(body), { promptTokens: 5, completionTokens: 0, totalTokens: 5, cachedTokens: 0, reasoningTokens: 0 });
  });

  it('tolerates the blank lines DeepSeek sends before a body and a leading BOM', () => {
    const json = '{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}';
    assert.equal(usageFromJsonBuffer(Buffer.from(`\n\n${json}`))?.totalTokens, 2);
    assert.equal(usageFromJsonBuffer(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]))?.totalTokens, 2);
  });

  it('returns undefined without parsing when the bytes "usage" are absent', () => {
    // Not valid JSON either: it would throw if it were parsed.
    assert.equal(usageFromJsonBuffer(Buffer.from('{"results":[')), undefined);
  });

  it('returns undefined for malformed JSON instead of throwing', () => {
    assert.equal(usageFromJsonBuffer(Buffer.from('{"usage":{"prompt_tokens":1')), undefined);
    assert.equal(usageFromJsonBuffer(Buffer.from('"usage"')), undefined);
  });
});

describe('Anthropic usage', () => {
  const message = {
    id: 'msg_01',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-5-20250929',
    content: [{ type: 'text', text: 'Hi' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 25, cache_creation_input_tokens: 1000, cache_read_input_tokens: 3000, cache_creation: { ephemeral_5m_input_tokens: 1000, ephemeral_1h_input_tokens: 0 }, output_tokens: 42, service_tier: 'standard' },
  };
  const expected = { promptTokens: 4025, completionTokens: 42, totalTokens: 4067, cachedTokens: 3000, cacheWriteTokens: 1000, reasoningTokens: 0 };

  it('adds cache reads and writes to input_tokens (which counts only uncached input) for the prompt', () => {
    assert.deepEqual(usageFromAnthropic(message.usage), expected);
    assert.deepEqual(usageFromAnthropicMessage(message), expected);
    assert.deepEqual(usageFromAnthropic({ input_tokens: 7, output_tokens: 3 }), { promptTokens: 7, completionTokens: 3, totalTokens: 10, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 });
  });

  it('finds nothing without a counter, and reads bad counts as 0', () => {
    assert.equal(usageFromAnthropic(undefined), undefined);
    assert.equal(usageFromAnthropic({ service_tier: 'standard' }), undefined);
    assert.equal(usageFromAnthropicMessage({ type: 'message' }), undefined);
    assert.equal(usageFromAnthropicMessage('nope'), undefined);
    assert.deepEqual(usageFromAnthropic({ input_tokens: -4, cache_read_input_tokens: Number.NaN, output_tokens: 2 }), { promptTokens: 0, completionTokens: 2, totalTokens: 2, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 });
  });

  it('leaves OpenAI-shaped readers alone: usageFromObject still reads input_tokens as the whole prompt', () => {
    assert.deepEqual(usageFromObject(message), { promptTokens: 25, completionTokens: 42, totalTokens: 67, cachedTokens: 0, reasoningTokens: 0 });
  });

  it('follows a stream: message_start, then cumulative message_delta counts that never go down', () => {
    const start = { type: 'message_start', message: { ...message, content: [], stop_reason: null, usage: { ...message.usage, output_tokens: 1 } } };
    let usage = usageFromAnthropicEvent(start, undefined);
    assert.deepEqual(usage, { ...expected, completionTokens: 1, totalTokens: 4026 });
    assert.equal(usageFromAnthropicEvent({ type: 'content_block_delta', delta: { type: 'text_delta', text: 'x' } }, usage), usage);
    assert.equal(usageFromAnthropicEvent({ type: 'ping' }, undefined), undefined);
    usage = usageFromAnthropicEvent({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 42 } }, usage);
    assert.deepEqual(usage, expected);
    usage = usageFromAnthropicEvent({ type: 'message_delta', delta: {}, usage: { input_tokens: 0, cache_read_input_tokens: 3000, output_tokens: 40 } }, usage);
    assert.deepEqual(usage, expected, 'a 0 or a smaller count does not lower what was said');
  });

  it('reads a whole JSON body, and the tail of a long one, in Anthropic\'s meaning only when asked', () => {
    const body = Buffer.from(JSON.stringify(message));
    assert.deepEqual(usageFromAnthropicJsonBuffer(body), expected);
    assert.equal(usageFromAnthropicJsonBuffer(Buffer.from('{"type":"message"}')), undefined);
    assert.equal(usageFromAnthropicJsonBuffer(Buffer.from('{"usage":')), undefined);
    const long = Buffer.from(JSON.stringify({ ...message, content: [{ type: 'text', text: 'x'.repeat(200_000) }] }));
    for (const size of [1000, 65_536, long.length]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < long.length; at += size) chunks.push(long.subarray(at, at + size));
      assert.deepEqual(usageFromJsonChunks(chunks, long.length, 'anthropic'), expected, `chunks of ${size}`);
    }
    assert.deepEqual(usageFromJsonChunks([body], body.length, 'anthropic'), expected);
    assert.equal(usageFromJsonChunks([body], body.length)?.promptTokens, 25, 'the OpenAI reading is unchanged');
  });
});
