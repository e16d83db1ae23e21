import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessagesToChatStream } from '../../../src/translate/messages-stream-to-chat.js';
import { accumulateChat, chatChunks, type Json } from './stream-readers.js';

/** A native Anthropic stream: thinking, text, two tool calls (the shape of docs.anthropic.com's examples). */
function anthropicStream(): Json[] {
  return [
    { type: 'message_start', message: { id: 'msg_014p7gG3wDgGV9EUtLvnow3U', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 472, cache_creation_input_tokens: 100, cache_read_input_tokens: 2000, output_tokens: 2 } } },
    { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
    { type: 'ping' },
    { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Two cities.' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQB' } },
    { type: 'content_block_stop', index: 0 },
    { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
    { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Okay, ' } },
    { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'checking.' } },
    { type: 'content_block_stop', index: 1 },
    { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_01A', name: 'get_weather', input: {} } },
    { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '' } },
    { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city": "Par' } },
    { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: 'is"}' } },
    { type: 'content_block_stop', index: 2 },
    { type: 'content_block_start', index: 3, content_block: { type: 'tool_use', id: 'toolu_01B', name: 'get_weather', input: {} } },
    { type: 'content_block_delta', index: 3, delta: { type: 'input_json_delta', partial_json: '{"city": "Oslo"}' } },
    { type: 'content_block_stop', index: 3 },
    { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 89 } },
    { type: 'message_stop' },
  ];
}

function run(events: Json[], includeUsage: boolean): { pieces: string[]; text: string } {
  const stream = new MessagesToChatStream('claude-sonnet-4-5', includeUsage);
  const pieces = events.map((event) => stream.push(event));
  pieces.push(stream.finish());
  return { pieces, text: pieces.join('') };
}

describe('MessagesToChatStream', () => {
  it('translates text and tool calls event by event into chunks openai-node reads back', () => {
    const { pieces, text } = run(anthropicStream(), true);
    assert.match(pieces[7]!, /"content":"Okay, "/, 'a text delta is written by the push that brought it');
    assert.equal(pieces[3], '', 'thinking is left out');
    const { chunks, done } = chatChunks(text);
    assert.equal(done, true);
    assert.deepEqual((chunks[0]!.choices as Json[])[0]!.delta, { role: 'assistant', content: '' });
    assert.ok(chunks.every((chunk) => chunk.id === 'chatcmpl-014p7gG3wDgGV9EUtLvnow3U' && chunk.model === 'claude-sonnet-4-5'));
    const chat = accumulateChat(chunks);
    assert.equal(chat.content, 'Okay, checking.');
    assert.deepEqual(chat.toolCalls, [
      { id: 'toolu_01A', name: 'get_weather', arguments: '{"city": "Paris"}' },
      { id: 'toolu_01B', name: 'get_weather', arguments: '{"city": "Oslo"}' },
    ]);
    assert.equal(chat.finishReason, 'tool_calls');
    const last = chunks[chunks.length - 1]!;
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: 2572, completion_tokens: 89, total_tokens: 2661, prompt_tokens_details: { cached_tokens: 2000 } });
  });

  it('sends no usage chunk unless include_usage was asked for', () => {
    const { chunks, done } = chatChunks(run(anthropicStream(), false).text);
    assert.equal(done, true);
    assert.ok(chunks.every((chunk) => chunk.usage === undefined && (chunk.choices as Json[]).length === 1));
  });

  it('takes message_delta usage over message_start usage (counts there are cumulative)', () => {
    const events = anthropicStream();
    events[events.length - 2] = { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 500, cache_read_input_tokens: 2000, cache_creation_input_tokens: 100, output_tokens: 90 } };
    const chat = accumulateChat(chatChunks(run(events, true).text).chunks);
    assert.deepEqual(chat.usage, { prompt_tokens: 2600, completion_tokens: 90, total_tokens: 2690, prompt_tokens_details: { cached_tokens: 2000 } });
    assert.equal(chat.finishReason, 'stop');
  });

  it('finishes with a finish reason even when message_delta never came', () => {
    const events = anthropicStream().slice(0, 9);
    const chat = accumulateChat(chatChunks(run(events, false).text).chunks);
    assert.equal(chat.content, 'Okay, checking.');
    assert.equal(chat.finishReason, 'stop');
  });

  it('skips event types it does not know', () => {
    const stream = new MessagesToChatStream('m', false);
    stream.push(anthropicStream()[0]!);
    assert.equal(stream.push({ type: 'content_block_future', index: 0 }), '');
  });

  it('turns an Anthropic error event into the error chunk openai-node throws, and ends there', () => {
    const stream = new MessagesToChatStream('m', true);
    stream.push(anthropicStream()[0]!);
    const out = stream.push({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    assert.equal(out, 'data: {"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":"upstream_error"}}\n\n');
    assert.equal(stream.push({ type: 'message_stop' }), '');
    assert.equal(stream.finish(), '');
  });

  it('fails with a gateway error code when given one', () => {
    const out = new MessagesToChatStream('m', false).fail({ type: 'server_error', message: 'The upstream did not continue in time.', code: 'upstream_timeout' });
    assert.deepEqual(JSON.parse(out.slice('data: '.length)), { error: { message: 'The upstream did not continue in time.', type: 'server_error', param: null, code: 'upstream_timeout' } });
  });
});
