import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AnthropicUsageTap } from '../../../src/streaming/anthropic-usage-tap.js';
import type { AnthropicTapOptions } from '../../../src/streaming/anthropic-usage-tap.js';

// Anthropic's stream as the API sends it (https://docs.anthropic.com/en/docs/build-with-claude/streaming):
// every event has an `event:` line equal to its data's type.
const event = (data: Record<string, unknown>): string => `event: ${String(data.type)}\ndata: ${JSON.stringify(data)}\n\n`;
const messageStart = event({
  type: 'message_start',
  message: { id: 'msg_01', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 25, cache_creation_input_tokens: 1000, cache_read_input_tokens: 3000, output_tokens: 1 } },
});
const blockStart = event({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
const ping = event({ type: 'ping' });
const textDelta = (text: string): string => event({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } });
const blockStop = event({ type: 'content_block_stop', index: 0 });
const toolStart = event({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: {} } });
const jsonDelta = (partial: string): string => event({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: partial } });
const messageDelta = event({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 42 } });
const messageStop = event({ type: 'message_stop' });
const stream = [messageStart, blockStart, ping, textDelta('Hel'), textDelta('lo 你好'), blockStop, toolStart, jsonDelta('{"city":'), jsonDelta(' "Paris"}'), messageDelta, messageStop].join('');
const usage = { promptTokens: 4025, completionTokens: 42, totalTokens: 4067, cachedTokens: 3000, cacheWriteTokens: 1000, reasoningTokens: 0 };

function chunksOf(text: string | Buffer, size: number): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

function run(chunks: Buffer[], opts: AnthropicTapOptions = {}): { tap: AnthropicUsageTap; output: string } {
  const tap = new AnthropicUsageTap(opts);
  const forwarded: Buffer[] = [];
  for (const chunk of chunks) {
    const out = tap.push(chunk);
    if (out !== undefined) forwarded.push(out);
  }
  const tail = tap.end();
  if (tail !== undefined) forwarded.push(tail);
  return { tap, output: Buffer.concat(forwarded).toString('utf8') };
}

describe('AnthropicUsageTap', () => {
  it('forwards the very same chunks and reads message_start\'s prompt and cache counts with message_delta\'s output, at every split', () => {
    for (const size of [1, 2, 7, 64, 333, 100_000]) {
      const chunks = chunksOf(stream, size);
      const tap = new AnthropicUsageTap();
      for (const chunk of chunks) assert.equal(tap.push(chunk), chunk, `chunk size ${size}`);
      assert.equal(tap.end(), undefined);
      assert.deepEqual(tap.usage, usage, `chunk size ${size}`);
      assert.equal(tap.sawDone, true);
      assert.equal(tap.upstreamError, undefined);
      assert.equal(tap.eventCount, 11);
    }
  });

  it('reads usage and the end at any two-piece split (property)', () => {
    const bytes = Buffer.from(stream);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length }), fc.integer({ min: 0, max: bytes.length }), (a, b) => {
        const [from, to] = a <= b ? [a, b] : [b, a];
        const { tap, output } = run([bytes.subarray(0, from), bytes.subarray(from, to), bytes.subarray(to)]);
        return output === stream && tap.sawDone && JSON.stringify(tap.usage) === JSON.stringify(usage);
      }),
    );
  });

  it('takes the last message_delta\'s cumulative output, and prompt counts a delta repeats, never lowered by a 0', () => {
    const deltas = [
      event({ type: 'message_delta', delta: { stop_reason: null }, usage: { output_tokens: 10 } }),
      event({ type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { input_tokens: 0, cache_read_input_tokens: 3500, output_tokens: 57 } }),
    ];
    const { tap } = run([Buffer.from(messageStart + blockStart + textDelta('x') + deltas.join('') + messageStop)]);
    assert.deepEqual(tap.usage, { promptTokens: 4525, completionTokens: 57, totalTokens: 4582, cachedTokens: 3500, cacheWriteTokens: 1000, reasoningTokens: 0 });
  });

  it('reports no usage for a stream cut after message_start, but the text so far (text, tool input JSON, thinking) to estimate it', () => {
    const thinking = event({ type: 'content_block_delta', index: 2, delta: { type: 'thinking_delta', thinking: 'hmm' } });
    const cut = messageStart + blockStart + textDelta('Hel') + textDelta('lo 你好') + toolStart + jsonDelta('{"city":') + thinking;
    for (const size of [1, 5, 100_000]) {
      const { tap } = run(chunksOf(cut, size));
      assert.equal(tap.usage, undefined, 'message_start says output_tokens 1: billing that would undercount');
      assert.deepEqual(tap.usageSoFar, { promptTokens: 4025, completionTokens: 1, totalTokens: 4026, cachedTokens: 3000, cacheWriteTokens: 1000, reasoningTokens: 0 });
      assert.equal(tap.sawDone, false);
      assert.equal(tap.textSeen(), 'Hello 你好{"city":hmm');
    }
  });

  it('reads an error event mid-stream as the upstream\'s error, with upstream keys blanked however the bytes are split', () => {
    const KEY = 'sk-ant-api03-secret-key-0123456789';
    const error = event({ type: 'error', error: { type: 'overloaded_error', message: `Overloaded (key ${KEY})` } });
    const failing = messageStart + blockStart + textDelta(`model says ${KEY}`) + error;
    for (const size of [1, 3, 17, 100_000]) {
      const { tap, output } = run(chunksOf(failing, size), { secrets: [KEY] });
      // As with SseUsageTap, the error as read is the upstream's; whoever shows it redacts it (the bytes are).
      assert.deepEqual(tap.upstreamError, { message: `Overloaded (key ${KEY})`, code: null, type: 'overloaded_error' });
      assert.equal(output, messageStart + blockStart + textDelta(`model says ${KEY}`) + error.replace(KEY, '[redacted]'), 'only the error event is scanned');
      assert.equal(tap.sawDone, false);
      assert.equal(tap.usage, undefined);
      assert.equal(tap.atEventBoundary, true);
    }
  });

  it('reads a stream whose server left out the event: lines by the type at the head of the data', () => {
    const bare = stream.replace(/^event: .*\n/gm, '');
    const { tap, output } = run(chunksOf(bare, 9));
    assert.equal(output, bare);
    assert.deepEqual(tap.usage, usage);
    assert.equal(tap.sawDone, true);
    assert.equal(tap.textSeen(), 'Hello 你好{"city": "Paris"}');
  });

  it('parses only message_start and message_delta, never a content delta, even one whose text looks like usage', () => {
    const sneaky = textDelta('"usage":{"output_tokens":999999} "type":"message_delta"');
    const { tap } = run([Buffer.from(messageStart + blockStart + sneaky + messageDelta + messageStop)]);
    assert.deepEqual(tap.usage, usage);
  });

  it('is between events only after a whole event, for keep-alive comments', () => {
    const tap = new AnthropicUsageTap();
    tap.push(Buffer.from(messageStart.slice(0, 30)));
    assert.equal(tap.atEventBoundary, false);
    tap.push(Buffer.from(messageStart.slice(30)));
    assert.equal(tap.atEventBoundary, true);
  });
});
