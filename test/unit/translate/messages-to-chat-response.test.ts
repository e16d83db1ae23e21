import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../../src/errors/index.js';
import { messageToChatCompletion } from '../../../src/translate/messages-to-chat-response.js';

type Json = Record<string, unknown>;

function message(content: Json[], stopReason: string | null, usage: Json = { input_tokens: 10, output_tokens: 5 }): Json {
  return { id: 'msg_013Zva2CMHLNnXjNJJKqJ2EF', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content, stop_reason: stopReason, stop_sequence: null, usage };
}

describe('messageToChatCompletion', () => {
  it('translates text, thinking (left out), tool use and usage with cache reads and writes', () => {
    const chat = messageToChatCompletion(
      message(
        [
          { type: 'thinking', thinking: 'The user wants weather.', signature: 'sig' },
          { type: 'text', text: 'Let me check ' },
          { type: 'text', text: 'both.', citations: null },
          { type: 'tool_use', id: 'toolu_01A', name: 'get_weather', input: { city: 'Paris' } },
        ],
        'tool_use',
        { input_tokens: 20, output_tokens: 30, cache_read_input_tokens: 1000, cache_creation_input_tokens: 200, service_tier: 'standard' },
      ),
      'claude-sonnet-4-5',
    );
    assert.equal(typeof chat.created, 'number');
    assert.deepEqual({ ...chat, created: 0 }, {
      id: 'chatcmpl-013Zva2CMHLNnXjNJJKqJ2EF',
      object: 'chat.completion',
      created: 0,
      model: 'claude-sonnet-4-5',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Let me check both.', refusal: null, tool_calls: [{ id: 'toolu_01A', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage: { prompt_tokens: 1220, completion_tokens: 30, total_tokens: 1250, prompt_tokens_details: { cached_tokens: 1000 } },
    });
  });

  it('maps stop reasons to finish reasons', () => {
    const finish = (stop: string | null): unknown => (messageToChatCompletion(message([{ type: 'text', text: 'x' }], stop), 'm').choices as Json[])[0]!.finish_reason;
    assert.deepEqual(
      ['end_turn', 'stop_sequence', 'max_tokens', 'tool_use', 'refusal', 'pause_turn', 'model_context_window_exceeded', null].map(finish),
      ['stop', 'stop', 'length', 'tool_calls', 'content_filter', 'stop', 'length', 'stop'],
    );
  });

  it('answers null content beside tool calls and "" for an empty message', () => {
    const tools = messageToChatCompletion(message([{ type: 'tool_use', id: 't', name: 'f', input: {} }], 'tool_use'), 'm');
    assert.equal(((tools.choices as Json[])[0]!.message as Json).content, null);
    const empty = messageToChatCompletion(message([], 'end_turn'), 'm');
    assert.equal(((empty.choices as Json[])[0]!.message as Json).content, '');
  });

  it('fails with upstream_error on a block only a server tool gives', () => {
    assert.throws(
      () => messageToChatCompletion(message([{ type: 'web_search_tool_result', tool_use_id: 's', content: [] }], 'end_turn'), 'm'),
      (error: unknown) => error instanceof GatewayError && error.code === 'upstream_error' && /web_search_tool_result/.test(error.message),
    );
  });
});
