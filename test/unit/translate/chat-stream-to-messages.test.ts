import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatToMessagesStream } from '../../../src/translate/chat-stream-to-messages.js';
import { accumulateMessage, anthropicEvents, chatChunk, type Json } from './stream-readers.js';

const usageChunk: Json = { id: 'chatcmpl-7', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [], usage: { prompt_tokens: 2100, completion_tokens: 57, total_tokens: 2157, prompt_tokens_details: { cached_tokens: 2048 } } };

const call = (index: number, fn: Json, id?: string): Json => ({ index, ...(id === undefined ? {} : { id, type: 'function' }), function: fn });

/** Pushes the chunks one by one, then finishes; returns every piece written. */
function run(chunks: Json[], stream = new ChatToMessagesStream('claude-sonnet-4-5')): { pieces: string[]; stream: ChatToMessagesStream } {
  const pieces = chunks.map((chunk) => stream.push(chunk));
  pieces.push(stream.finish());
  return { pieces, stream };
}

describe('ChatToMessagesStream', () => {
  it('translates text and two tool calls chunk by chunk into Anthropic events that parse back', () => {
    const chunks = [
      chatChunk({ role: 'assistant', content: '', refusal: null }),
      chatChunk({ content: 'Checking ' }),
      chatChunk({ content: 'both.' }),
      chatChunk({ tool_calls: [call(0, { name: 'get_weather', arguments: '' }, 'call_a')] }),
      chatChunk({ tool_calls: [call(0, { arguments: '{"city":' })] }),
      chatChunk({ tool_calls: [call(0, { arguments: '"Paris"}' })] }),
      chatChunk({ tool_calls: [call(1, { name: 'get_time', arguments: '{"tz":"Europe/' }, 'call_b')] }),
      chatChunk({ tool_calls: [call(1, { arguments: 'Oslo"}' })] }),
      chatChunk({}, 'tool_calls'),
      usageChunk,
    ];
    const { pieces, stream } = run(chunks);
    // Nothing is held back: each text or argument fragment is written by the push that brought it.
    assert.match(pieces[1]!, /"text":"Checking "/);
    assert.match(pieces[4]!, /"partial_json":"\{\\"city\\":"/);
    assert.equal(pieces[9], '', 'the usage chunk writes nothing until the end');

    const events = anthropicEvents(pieces.join(''));
    assert.deepEqual(
      events.map((event) => event.type),
      ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    assert.deepEqual(events[0], {
      type: 'message_start',
      message: { id: 'msg_7', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 } },
    });
    assert.deepEqual(events[6], { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'call_a', name: 'get_weather', input: {} } });
    const message = accumulateMessage(events);
    assert.deepEqual(message.content, [
      { type: 'text', text: 'Checking both.' },
      { type: 'tool_use', id: 'call_a', name: 'get_weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_b', name: 'get_time', input: { tz: 'Europe/Oslo' } },
    ]);
    assert.equal(message.stopReason, 'tool_use');
    const usage = { input_tokens: 52, output_tokens: 57, cache_read_input_tokens: 2048, cache_creation_input_tokens: 0 };
    assert.deepEqual(events[14]!.usage, usage);
    assert.deepEqual(stream.usage, usage);
  });

  it('translates two tool calls that arrive in the same chunk, whole (as Gemini sends them)', () => {
    const { pieces } = run([chatChunk({ role: 'assistant', tool_calls: [call(0, { name: 'f', arguments: '{"a":1}' }, 'c0'), call(1, { name: 'g', arguments: '{}' }, 'c1')] }), chatChunk({}, 'stop')]);
    const message = accumulateMessage(anthropicEvents(pieces.join('')));
    assert.deepEqual(message.content, [
      { type: 'tool_use', id: 'c0', name: 'f', input: { a: 1 } },
      { type: 'tool_use', id: 'c1', name: 'g', input: {} },
    ]);
    assert.equal(message.stopReason, 'tool_use', 'tool calls decide the stop reason, whatever the upstream said');
  });

  it('opens a new text block for text after a tool call', () => {
    const { pieces } = run([chatChunk({ content: 'a' }), chatChunk({ tool_calls: [call(0, { name: 'f', arguments: '{}' }, 'c0')] }), chatChunk({ content: 'b' }), chatChunk({}, 'tool_calls')]);
    const message = accumulateMessage(anthropicEvents(pieces.join('')));
    assert.deepEqual(message.content.map((block) => block.type), ['text', 'tool_use', 'text']);
  });

  it('ends with an error event when arguments go back to a tool call whose block is closed', () => {
    const stream = new ChatToMessagesStream('m');
    stream.push(chatChunk({ tool_calls: [call(0, { name: 'f', arguments: '{"a":' }, 'c0')] }));
    stream.push(chatChunk({ tool_calls: [call(1, { name: 'g', arguments: '{}' }, 'c1')] }));
    const out = stream.push(chatChunk({ tool_calls: [call(0, { arguments: '1}' })] }));
    const events = anthropicEvents(out);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, 'error');
    assert.match(((events[0]!.error as Json).message as string), /earlier tool call/);
    assert.equal(stream.push(chatChunk({ content: 'late' })), '');
    assert.equal(stream.finish(), '');
  });

  it('maps finish reasons: stop, length, content_filter, and a refusal', () => {
    const stopReason = (chunks: Json[]): unknown => accumulateMessage(anthropicEvents(run(chunks).pieces.join(''))).stopReason;
    assert.equal(stopReason([chatChunk({ content: 'x' }, 'stop')]), 'end_turn');
    assert.equal(stopReason([chatChunk({ content: 'x' }, 'length')]), 'max_tokens');
    assert.equal(stopReason([chatChunk({ content: 'x' }, 'content_filter')]), 'refusal');
    assert.equal(stopReason([chatChunk({ refusal: 'I cannot help.' }), chatChunk({}, 'stop')]), 'refusal');
  });

  it('finishes an empty stream as a whole, empty message', () => {
    const events = anthropicEvents(new ChatToMessagesStream('m').finish());
    assert.deepEqual(events.map((event) => event.type), ['message_start', 'ping', 'message_delta', 'message_stop']);
    assert.deepEqual(accumulateMessage(events).content, []);
  });

  it('fails with Anthropic\'s error event, once', () => {
    const stream = new ChatToMessagesStream('m');
    stream.push(chatChunk({ content: 'partial' }));
    const out = stream.fail({ type: 'overloaded_error', message: 'Upstream overloaded.' });
    assert.equal(out, 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Upstream overloaded."}}\n\n');
    assert.equal(stream.fail({ type: 'api_error', message: 'again' }), '');
    assert.equal(stream.finish(), '');
  });

  it('turns an upstream error chunk into the error event', () => {
    const stream = new ChatToMessagesStream('m');
    const events = anthropicEvents(stream.push({ error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } }));
    assert.deepEqual(events, [{ type: 'error', error: { type: 'api_error', message: 'Rate limit reached' } }]);
  });
});
