import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../../src/errors/index.js';
import { chatToMessagesRequest, DEFAULT_MAX_TOKENS, THINKING_BUDGETS } from '../../../src/translate/chat-to-messages.js';

type Json = Record<string, unknown>;

const options = { model: 'claude-sonnet-4-5', stream: false };

function refusal(body: Json): GatewayError {
  try {
    chatToMessagesRequest(body, options);
  } catch (error) {
    assert.ok(error instanceof GatewayError);
    assert.equal(error.status, 400);
    return error;
  }
  assert.fail('expected a refusal');
}

const weatherTool = { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };

describe('chatToMessagesRequest', () => {
  it('translates an OpenAI SDK tool round trip: system, developer, user, tool calls, tool results, sampling', () => {
    const body = {
      model: 'claude-sonnet-4-5',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'developer', content: [{ type: 'text', text: 'Use metric units.' }] },
        { role: 'user', content: 'Weather in Paris and Oslo?', name: 'ann' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '21°C' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '9°C' }] },
        { role: 'user', content: 'thanks' },
        { role: 'system', content: 'Answer in French.' },
      ],
      tools: [weatherTool],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      max_completion_tokens: 500,
      temperature: 0.3,
      top_p: 0.8,
      stop: 'END',
      user: 'user-42',
      stream: true,
      stream_options: { include_usage: true },
      store: false,
      seed: 7,
      frequency_penalty: 0,
      n: 1,
    };
    assert.deepEqual(chatToMessagesRequest(body, { model: 'claude-sonnet-4-5-20250929', stream: true }), {
      model: 'claude-sonnet-4-5-20250929',
      system: 'You are terse.\n\nUse metric units.\n\nAnswer in French.',
      messages: [
        { role: 'user', content: 'Weather in Paris and Oslo?' },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } },
            { type: 'tool_use', id: 'call_2', name: 'get_weather', input: { city: 'Oslo' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'call_1', content: '21°C' },
            { type: 'tool_result', tool_use_id: 'call_2', content: '9°C' },
            { type: 'text', text: 'thanks' },
          ],
        },
      ],
      max_tokens: 500,
      temperature: 0.3,
      top_p: 0.8,
      stop_sequences: ['END'],
      tools: [{ name: 'get_weather', description: 'Weather for a city', input_schema: weatherTool.function.parameters }],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      metadata: { user_id: 'user-42' },
      stream: true,
    });
  });

  it('sends the default max_tokens when the caller set no limit', () => {
    assert.equal(chatToMessagesRequest({ messages: [{ role: 'user', content: 'x' }] }, options).max_tokens, DEFAULT_MAX_TOKENS);
    assert.equal(chatToMessagesRequest({ messages: [{ role: 'user', content: 'x' }], max_tokens: 77 }, options).max_tokens, 77);
  });

  it('turns reasoning_effort into a thinking budget below max_tokens', () => {
    const request = (extra: Json): Json => chatToMessagesRequest({ messages: [{ role: 'user', content: 'x' }], ...extra }, options);
    const high = request({ reasoning_effort: 'high', max_completion_tokens: 32000 });
    assert.deepEqual(high.thinking, { type: 'enabled', budget_tokens: THINKING_BUDGETS.high });
    assert.equal(high.max_tokens, 32000);
    const tight = request({ reasoning_effort: 'medium', max_completion_tokens: 1000 });
    assert.deepEqual(tight.thinking, { type: 'enabled', budget_tokens: 4096 });
    assert.equal(tight.max_tokens, 5096);
    const byDefault = request({ reasoning_effort: 'low' });
    assert.ok((byDefault.max_tokens as number) > 1024);
    assert.equal('thinking' in request({ reasoning_effort: 'none' }), false);
  });

  it('translates images: data URLs to base64 sources, http URLs to url sources', () => {
    const chat = chatToMessagesRequest(
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'compare' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'high' } },
              { type: 'image_url', image_url: { url: 'https://example.com/b.jpg' } },
            ],
          },
        ],
      },
      options,
    );
    assert.deepEqual(chat.messages, [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'compare' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/b.jpg' } },
        ],
      },
    ]);
  });

  it('maps tool_choice both ways of naming it', () => {
    const choice = (tool_choice: unknown): unknown => chatToMessagesRequest({ messages: [{ role: 'user', content: 'x' }], tools: [weatherTool], tool_choice }, options).tool_choice;
    assert.deepEqual(choice('required'), { type: 'any' });
    assert.deepEqual(choice('none'), { type: 'none' });
    assert.deepEqual(choice({ type: 'function', function: { name: 'get_weather' } }), { type: 'tool', name: 'get_weather' });
  });

  it('gives a tool without parameters an empty object schema', () => {
    const chat = chatToMessagesRequest({ messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'now' } }] }, options);
    assert.deepEqual(chat.tools, [{ name: 'now', input_schema: { type: 'object', properties: {} } }]);
  });

  it('merges consecutive same-role messages and leaves out empty text', () => {
    const chat = chatToMessagesRequest(
      {
        messages: [
          { role: 'user', content: 'a' },
          { role: 'user', content: [{ type: 'text', text: 'b' }] },
          { role: 'assistant', content: 'c' },
          { role: 'assistant', content: null, refusal: 'I cannot.' },
          { role: 'user', content: '' },
        ],
      },
      options,
    );
    assert.deepEqual(chat.messages, [
      { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'c' }, { type: 'text', text: 'I cannot.' }] },
    ]);
  });

  describe('refuses, naming what cannot be translated', () => {
    const user = { role: 'user', content: 'x' };
    const cases: [string, Json, string, RegExp][] = [
      ['audio input', { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: '', format: 'wav' } }] }] }, 'messages[0].content[0].type', /Content part type "input_audio" cannot be sent to an Anthropic upstream/],
      ['a file part', { messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'f' } }] }] }, 'messages[0].content[0].type', /"file"/],
      ['an SVG data URL', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/svg+xml;base64,PHN2Zz4=' } }] }] }, 'messages[0].content[0].image_url.url', /image\/svg\+xml/],
      ['arguments that are not JSON', { messages: [user, { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":' } }] }] }, 'messages[1].tool_calls[0].function.arguments', /must be a JSON object/],
      ['arguments that are an array', { messages: [user, { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '[1]' } }] }] }, 'messages[1].tool_calls[0].function.arguments', /JSON object/],
      ['a custom tool', { messages: [user], tools: [{ type: 'custom', custom: { name: 'g' } }] }, 'tools[0].type', /Tool type "custom"/],
      ['allowed_tools', { messages: [user], tools: [weatherTool], tool_choice: { type: 'allowed_tools', allowed_tools: {} } }, 'tool_choice.type', /"allowed_tools"/],
      ['temperature above 1', { messages: [user], temperature: 1.5 }, 'temperature', /between 0 and 1/],
      ['n above 1', { messages: [user], n: 2 }, 'n', /"n"/],
      ['logprobs', { messages: [user], logprobs: true }, 'logprobs', /"logprobs"/],
      ['top_logprobs', { messages: [user], top_logprobs: 2 }, 'top_logprobs', /"top_logprobs"/],
      ['json_schema output', { messages: [user], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } }, 'response_format', /"json_schema"/],
      ['json_object output', { messages: [user], response_format: { type: 'json_object' } }, 'response_format', /"json_object"/],
      ['audio output', { messages: [user], modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'mp3' } }, 'audio', /"audio"/],
      ['audio modality', { messages: [user], modalities: ['text', 'audio'] }, 'modalities', /"text"/],
      ['a presence penalty', { messages: [user], presence_penalty: 0.5 }, 'presence_penalty', /repetition penalties/],
      ['a frequency penalty', { messages: [user], frequency_penalty: -1 }, 'frequency_penalty', /repetition penalties/],
      ['legacy functions', { messages: [user], functions: [{ name: 'f' }] }, 'functions', /use `tools`/],
      ['a function message', { messages: [{ role: 'function', name: 'f', content: 'x' }] }, 'messages[0].role', /Role "function"/],
      ['an unknown reasoning effort', { messages: [user], reasoning_effort: 'extreme' }, 'reasoning_effort', /"extreme"/],
      ['an unknown parameter', { messages: [user], frobnicate: true }, 'frobnicate', /Parameter "frobnicate"/],
      ['logit_bias', { messages: [user], logit_bias: { '50256': -100 } }, 'logit_bias', /token biases/],
    ];
    for (const [name, body, param, message] of cases) {
      it(name, () => {
        const error = refusal(body);
        assert.equal(error.param, param);
        assert.match(error.message, message);
      });
    }
  });

  describe('refuses malformed parts, naming the path', () => {
    const cases: [Json, string][] = [
      [{}, 'messages'],
      [{ messages: [{ content: 'x' }] }, 'messages[0].role'],
      [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id'],
      [{ messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x' } }] }] }, 'messages[0].content[0].image_url.url'],
      [{ messages: [{ role: 'system', content: [{ type: 'image_url' }] }] }, 'messages[0].content[0].type'],
      [{ messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 0 }, 'max_completion_tokens'],
      [{ messages: [{ role: 'user', content: 'x' }], stop: [1] }, 'stop[0]'],
      [{ messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f', parameters: 'none' } }] }, 'tools[0].function.parameters'],
    ];
    for (const [body, param] of cases) {
      it(param, () => assert.equal(refusal(body).param, param));
    }
  });
});
