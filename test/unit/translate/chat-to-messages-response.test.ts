import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../../src/errors/index.js';
import { chatCompletionToMessage } from '../../../src/translate/chat-to-messages-response.js';

type Json = Record<string, unknown>;

function completion(message: Json, finishReason: string | null, usage?: Json): Json {
  return { id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG', object: 'chat.completion', created: 1741570283, model: 'gpt-4o-2024-08-06', choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }], usage };
}

describe('chatCompletionToMessage', () => {
  it('translates text, tool calls and usage with cached tokens', () => {
    const chat = completion(
      {
        role: 'assistant',
        content: 'Checking both.',
        refusal: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_2', type: 'function', function: { name: 'now', arguments: '' } },
        ],
      },
      'tool_calls',
      { prompt_tokens: 1200, completion_tokens: 40, total_tokens: 1240, prompt_tokens_details: { cached_tokens: 1024 } },
    );
    assert.deepEqual(chatCompletionToMessage(chat, 'claude-sonnet-4-5'), {
      id: 'msg_B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5',
      content: [
        { type: 'text', text: 'Checking both.' },
        { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } },
        { type: 'tool_use', id: 'call_2', name: 'now', input: {} },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 176, output_tokens: 40, cache_read_input_tokens: 1024, cache_creation_input_tokens: 0 },
    });
  });

  it('maps finish reasons to stop reasons', () => {
    const reason = (finish: string | null, message: Json = { role: 'assistant', content: 'x' }): unknown => chatCompletionToMessage(completion(message, finish), 'm').stop_reason;
    assert.equal(reason('stop'), 'end_turn');
    assert.equal(reason('length'), 'max_tokens');
    assert.equal(reason('content_filter'), 'refusal');
    assert.equal(reason(null), 'end_turn');
    assert.equal(reason('stop', { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }), 'tool_use');
    assert.equal(reason('stop', { role: 'assistant', content: null, refusal: 'I will not.' }), 'refusal');
  });

  it('answers empty content as an empty array, with zero usage when the upstream sent none', () => {
    const message = chatCompletionToMessage(completion({ role: 'assistant', content: '' }, 'stop'), 'm');
    assert.deepEqual(message.content, []);
    assert.deepEqual(message.usage, { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 });
  });

  it('gives a tool call without an id one in Anthropic form', () => {
    const message = chatCompletionToMessage(completion({ role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{}' } }] }, 'tool_calls'), 'm');
    assert.match((message.content as Json[])[0]!.id as string, /^toolu_[0-9a-f]{32}$/);
  });

  describe('fails with upstream_error (502) on an answer it cannot read', () => {
    const cases: [string, Json][] = [
      ['no choices', { id: 'x', choices: [] }],
      ['arguments that are not JSON', completion({ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"city":' } }] }, 'tool_calls')],
      ['arguments that are not an object', completion({ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '"Paris"' } }] }, 'tool_calls')],
      ['a tool call without a name', completion({ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { arguments: '{}' } }] }, 'tool_calls')],
    ];
    for (const [name, chat] of cases) {
      it(name, () => {
        assert.throws(
          () => chatCompletionToMessage(chat, 'm'),
          (error: unknown) => error instanceof GatewayError && error.code === 'upstream_error' && error.status === 502,
        );
      });
    }
  });
});
