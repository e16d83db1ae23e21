import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sseErrorEvent } from '../../../src/errors/index.js';
import { SSE_KEEPALIVE, SseUsageTap } from '../../../src/streaming/sse-usage-tap.js';
import type { SseTapOptions } from '../../../src/streaming/sse-usage-tap.js';

const base = '"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-mini","system_fingerprint":"fp_1"';
const roleChunk = `data: {${base},"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n`;
const contentChunk = (text: string): string =>
  `data: {${base},"choices":[{"index":0,"delta":{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}],"usage":null}\n\n`;
const finishChunk = `data: {${base},"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n`;
const usageChunk = `data: {${base},"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n`;
const done = 'data: [DONE]\n\n';
const chatEvents = [roleChunk, contentChunk('Hel'), contentChunk('lo 你好'), finishChunk, usageChunk, done];
const chatStream = chatEvents.join('');
const chatUsage = { promptTokens: 9, completionTokens: 2, totalTokens: 11, cachedTokens: 0, reasoningTokens: 0 };

/** Splits `text` into chunks of `size` bytes (so events and characters get cut). */
function chunksOf(text: string | Buffer, size: number): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

/** Runs the chunks through a tap; returns the tap and everything it forwarded. */
function run(chunks: Buffer[], opts: SseTapOptions): { tap: SseUsageTap; forwarded: Buffer[]; output: string } {
  const tap = new SseUsageTap(opts);
  const forwarded: Buffer[] = [];
  for (const chunk of chunks) {
    const out = tap.push(chunk);
    if (out !== undefined) forwarded.push(out);
  }
  const tail = tap.end();
  if (tail !== undefined) forwarded.push(tail);
  return { tap, forwarded, output: Buffer.concat(forwarded).toString('utf8') };
}

describe('SseUsageTap pass-through (dropUsageEvent false)', () => {
  it('returns the very same chunk objects and reads usage and [DONE]', () => {
    for (const size of [1, 7, 64, 100_000]) {
      const chunks = chunksOf(chatStream, size);
      const tap = new SseUsageTap({ dropUsageEvent: false });
      for (const chunk of chunks) assert.equal(tap.push(chunk), chunk);
      assert.equal(tap.end(), undefined);
      assert.deepEqual(tap.usage, chatUsage);
      assert.equal(tap.sawDone, true);
      assert.equal(tap.eventCount, 6);
      assert.equal(tap.upstreamError, undefined);
      assert.equal(typeof tap.firstEventAt, 'number');
    }
  });

  it('forwards a chunk before the event it starts is complete', () => {
    const tap = new SseUsageTap({ dropUsageEvent: false });
    const half = Buffer.from(usageChunk.slice(0, 40));
    assert.equal(tap.push(half), half);
    assert.equal(tap.usage, undefined);
    assert.equal(tap.firstEventAt, undefined);
  });

  it('reads usage from a final event that lacks its blank line at end()', () => {
    const { tap } = run([Buffer.from(finishChunk + usageChunk.trimEnd())], { dropUsageEvent: false });
    assert.deepEqual(tap.usage, chatUsage);
  });
});

describe('SseUsageTap dropUsageEvent', () => {
  it('forwards the stream minus exactly the usage event and still records usage', () => {
    const expected = chatStream.replace(usageChunk, '');
    for (const size of [1, 5, 33, 200, 100_000]) {
      const { tap, output } = run(chunksOf(chatStream, size), { dropUsageEvent: true });
      assert.equal(output, expected, `chunk size ${size}`);
      assert.deepEqual(tap.usage, chatUsage);
      assert.equal(tap.sawDone, true);
      assert.equal(tap.eventCount, 6);
    }
  });

  it('forwards a chunk holding only whole events as the same object', () => {
    const tap = new SseUsageTap({ dropUsageEvent: true });
    const chunk = Buffer.from(roleChunk + contentChunk('Hi'));
    assert.equal(tap.push(chunk), chunk);
  });

  it('holds a partial event until it completes', () => {
    const tap = new SseUsageTap({ dropUsageEvent: true });
    assert.equal(tap.push(Buffer.from(roleChunk.slice(0, 50))), undefined);
    assert.equal(tap.atEventBoundary, true);
    assert.equal(tap.push(Buffer.from(roleChunk.slice(50)))?.toString(), roleChunk);
  });

  it('does not drop Azure chunks with empty choices and no usage', () => {
    const azureFirst =
      'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}\n\n';
    const stream = azureFirst + roleChunk + contentChunk('Hi') + finishChunk + usageChunk + done;
    const { tap, output } = run([Buffer.from(stream)], { dropUsageEvent: true });
    assert.equal(output, stream.replace(usageChunk, ''));
    assert.deepEqual(tap.usage, chatUsage);
  });

  it('records Moonshot usage in choices[0] and forwards that chunk', () => {
    const moonshotFinish =
      'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"kimi-k2","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":19,"completion_tokens":13,"total_tokens":32,"cached_tokens":0}}]}\n\n';
    const stream = contentChunk('Hi') + moonshotFinish + done;
    for (const dropUsageEvent of [false, true]) {
      const { tap, output } = run(chunksOf(stream, 17), { dropUsageEvent });
      assert.equal(output, stream);
      assert.deepEqual(tap.usage, { promptTokens: 19, completionTokens: 13, totalTokens: 32, cachedTokens: 0, reasoningTokens: 0 });
    }
  });

  it('passes keep-alive and processing comments through', () => {
    const stream = `: OPENROUTER PROCESSING\n\n${roleChunk}: keep-alive\n\n${contentChunk('Hi')}${usageChunk}: keep-alive\n\n${done}`;
    for (const size of [3, 1000]) {
      const { output } = run(chunksOf(stream, size), { dropUsageEvent: true });
      assert.equal(output, stream.replace(usageChunk, ''));
    }
  });

  it('forwards an event too large to inspect instead of holding it', () => {
    const big = contentChunk('x'.repeat(1000));
    const stream = roleChunk + big + usageChunk + done;
    const tap = new SseUsageTap({ dropUsageEvent: true, maxEventBytes: 600 });
    const forwarded: Buffer[] = [];
    let pushed = 0;
    for (const chunk of chunksOf(stream, 50)) {
      const out = tap.push(chunk);
      pushed += chunk.length;
      if (out !== undefined) forwarded.push(out);
      const intoBig = pushed - Buffer.byteLength(roleChunk);
      // Once the big event is known to be oversize, everything received is forwarded at once.
      if (intoBig > 650 && intoBig < Buffer.byteLength(big)) assert.equal(Buffer.concat(forwarded).length, pushed);
    }
    const tail = tap.end();
    if (tail !== undefined) forwarded.push(tail);
    assert.equal(Buffer.concat(forwarded).toString(), stream.replace(usageChunk, ''));
    assert.deepEqual(tap.usage, chatUsage);
  });
});

describe('SseUsageTap Responses API', () => {
  const created =
    'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","error":null,"output":[],"usage":null}}\n\n';
  const delta = (text: string, n: number): string =>
    `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":${n},"item_id":"msg_1","output_index":0,"content_index":0,"delta":${JSON.stringify(text)}}\n\n`;
  const completed =
    'event: response.completed\ndata: {"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","object":"response","status":"completed","error":null,"output":[],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}}\n\n';
  const responsesUsage = { promptTokens: 36, completionTokens: 87, totalTokens: 123, cachedTokens: 0, reasoningTokens: 0 };

  it('reads usage from response.completed and treats it as the end of stream', () => {
    const stream = created + delta('Hi', 1) + completed;
    const { tap, output } = run(chunksOf(stream, 23), { dropUsageEvent: false });
    assert.equal(output, stream);
    assert.deepEqual(tap.usage, responsesUsage);
    assert.equal(tap.sawDone, true);
    assert.equal(tap.upstreamError, undefined);
  });

  it('recognises a terminal event sent without an event: line', () => {
    const stream = created.replace('event: response.created\n', '') + completed.replace('event: response.completed\n', '');
    const { tap } = run([Buffer.from(stream)], { dropUsageEvent: false });
    assert.equal(tap.sawDone, true);
    assert.deepEqual(tap.usage, responsesUsage);
  });

  it('does not call a stream done before its terminal event', () => {
    const { tap } = run([Buffer.from(created + delta('Hi', 1))], { dropUsageEvent: false });
    assert.equal(tap.sawDone, false);
    assert.equal(tap.usage, undefined);
  });

  it('records the nested error event as captured on the wire', () => {
    const error =
      'event: error\ndata: {"type":"error","error":{"code":"server_is_overloaded","type":"service_unavailable_error","message":"Our servers are currently overloaded. Please try again later.","param":null},"sequence_number":2}\n\n';
    const { tap } = run([Buffer.from(created + error)], { dropUsageEvent: false });
    assert.deepEqual(tap.upstreamError, {
      message: 'Our servers are currently overloaded. Please try again later.',
      code: 'server_is_overloaded',
      type: 'service_unavailable_error',
    });
  });

  it('records the flat error event of the spec', () => {
    const error = 'data: {"type":"error","code":"server_error","message":"Something broke","param":null,"sequence_number":2}\n\n';
    const { tap } = run([Buffer.from(created + error)], { dropUsageEvent: false });
    assert.deepEqual(tap.upstreamError, { message: 'Something broke', code: 'server_error', type: null });
  });

  it('returns the streamed text deltas from textSeen()', () => {
    const { tap } = run([Buffer.from(created + delta('Hel', 1) + delta('lo', 2))], { dropUsageEvent: false });
    assert.equal(tap.textSeen(), 'Hello');
  });
});

describe('SseUsageTap errors', () => {
  it('records an OpenRouter mid-stream error with a numeric code', () => {
    const error =
      'data: {"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"openai/gpt-4o","provider":"OpenAI","error":{"code":502,"message":"Provider returned error"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\n';
    const { tap, output } = run(chunksOf(roleChunk + contentChunk('Hi') + error, 10), { dropUsageEvent: true });
    assert.equal(output, roleChunk + contentChunk('Hi') + error);
    assert.deepEqual(tap.upstreamError, { message: 'Provider returned error', code: '502', type: null });
    assert.equal(tap.sawDone, false);
  });

  it('records an OpenAI-style error object and keeps the first one', () => {
    const first = 'data: {"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}\n\n';
    const second = 'data: {"error":{"message":"later","type":"server_error","param":null,"code":null}}\n\n';
    const { tap } = run([Buffer.from(roleChunk + first + second)], { dropUsageEvent: false });
    assert.deepEqual(tap.upstreamError, { message: 'The server had an error', code: null, type: 'server_error' });
  });

  it('records an error event whose data is not JSON', () => {
    const { tap } = run([Buffer.from('event: error\ndata: upstream timed out\n\n')], { dropUsageEvent: false });
    assert.deepEqual(tap.upstreamError, { message: 'upstream timed out', code: null, type: null });
  });

  it('does not mistake "error" inside generated text for an error', () => {
    const { tap } = run([Buffer.from(contentChunk('{"error":{"message":"x"}} and "type":"error"'))], { dropUsageEvent: false });
    assert.equal(tap.upstreamError, undefined);
  });

  it('frames errors the way openai-node throws on', () => {
    const event = sseErrorEvent({ message: 'Upstream closed', type: 'server_error', code: 'upstream_error' });
    assert.equal(event.toString(), 'data: {"error":{"message":"Upstream closed","type":"server_error","param":null,"code":"upstream_error"}}\n\n');
    const { tap } = run([event], { dropUsageEvent: false });
    assert.deepEqual(tap.upstreamError, { message: 'Upstream closed', code: 'upstream_error', type: 'server_error' });
  });

  it('exposes a keep-alive comment that produces no event', () => {
    assert.equal(SSE_KEEPALIVE.toString(), ': keep-alive\n\n');
    const { tap } = run([SSE_KEEPALIVE], { dropUsageEvent: false });
    assert.equal(tap.eventCount, 0);
    assert.equal(tap.atEventBoundary, true);
  });
});

describe('SseUsageTap textSeen()', () => {
  it('returns the text of a stream cut before its usage chunk', () => {
    const reasoning = `data: {${base},"choices":[{"index":0,"delta":{"reasoning_content":"Think. "},"finish_reason":null}]}\n\n`;
    const tool = `data: {${base},"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\\"a\\":1}"}}]},"finish_reason":null}]}\n\n`;
    const stream = roleChunk + reasoning + contentChunk('Hel') + contentChunk('lo 你好') + tool;
    const cut = Buffer.from(stream).subarray(0, Buffer.byteLength(stream) - 30);
    const { tap } = run(chunksOf(cut, 13), { dropUsageEvent: false });
    assert.equal(tap.usage, undefined);
    assert.equal(tap.sawDone, false);
    assert.equal(tap.textSeen(), 'Think. Hello 你好');
  });

  it('reads legacy completions text', () => {
    const chunk = 'data: {"id":"cmpl-1","object":"text_completion","choices":[{"text":"Once upon","index":0,"logprobs":null,"finish_reason":null}]}\n\n';
    const { tap } = run([Buffer.from(chunk + chunk)], { dropUsageEvent: false });
    assert.equal(tap.textSeen(), 'Once uponOnce upon');
  });

  it('keeps only retainTextBytes of the stream', () => {
    const stream = contentChunk('aaa') + contentChunk('bbb');
    const { tap } = run(chunksOf(stream, 5), { dropUsageEvent: false, retainTextBytes: Buffer.byteLength(contentChunk('aaa')) });
    assert.equal(tap.textSeen(), 'aaa');
  });
});

describe('SseUsageTap atEventBoundary', () => {
  it('follows the bytes forwarded to the client in both modes', () => {
    for (const dropUsageEvent of [false, true]) {
      const tap = new SseUsageTap({ dropUsageEvent });
      assert.equal(tap.atEventBoundary, true);
      tap.push(Buffer.from(roleChunk));
      assert.equal(tap.atEventBoundary, true);
      tap.push(Buffer.from(': partial comm'));
      assert.equal(tap.atEventBoundary, false);
      tap.push(Buffer.from('ent\n'));
      assert.equal(tap.atEventBoundary, true);
      tap.push(Buffer.from('data: {"choi'));
      // Drop mode holds the partial event back, so the client is still between events.
      assert.equal(tap.atEventBoundary, dropUsageEvent);
    }
  });
});

describe('SseUsageTap stripNullUsage', () => {
  it('cuts "usage":null from forwarded chunks so the client sees chunks as without include_usage', () => {
    const withUsage = [
      'data: {"id":"c","choices":[{"index":0,"delta":{"content":"say \\"usage\\":null"}}],"usage":null}\n\n',
      'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n',
      'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n',
      'data: [DONE]\n\n',
    ];
    const tap = new SseUsageTap({ dropUsageEvent: true, stripNullUsage: true });
    const out: Buffer[] = [];
    for (const part of withUsage) {
      const forwarded = tap.push(Buffer.from(part));
      if (forwarded) out.push(forwarded);
    }
    const rest = tap.end();
    if (rest) out.push(rest);
    assert.equal(
      Buffer.concat(out).toString(),
      'data: {"id":"c","choices":[{"index":0,"delta":{"content":"say \\"usage\\":null"}}]}\n\n' +
        'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n' +
        'data: [DONE]\n\n',
    );
    assert.equal(tap.usage?.totalTokens, 5);
  });
});

describe('SseUsageTap secrets', () => {
  const KEY = 'sk-proj-UpstreamKey0123456789abcdef';
  const OTHER = 'plain-upstream-secret-0123456789';
  const chatError = `data: {"error":{"message":"Incorrect API key provided: ${KEY}.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}\n\n`;
  const flatError = `event: error\ndata: {"type":"error","code":"invalid_api_key","message":"key ${OTHER} was revoked","param":null,"sequence_number":3}\n\n`;
  const failed = `event: response.failed\ndata: {"type":"response.failed","response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"upstream said ${KEY}"},"usage":null}}\n\n`;
  const notJson = `event: error\ndata: upstream blew up with ${KEY}\n\n`;
  const blank = (text: string): string => text.split(KEY).join('[redacted]').split(OTHER).join('[redacted]');

  it('blanks keys in every error shape, whatever the chunking, the key split across chunks included', () => {
    for (const errorEvent of [chatError, flatError, failed, notJson]) {
      const stream = roleChunk + contentChunk('Hi') + errorEvent + done;
      for (const size of [1, 3, 17, 64, 100_000]) {
        for (const dropUsageEvent of [false, true]) {
          const { tap, output } = run(chunksOf(stream, size), { dropUsageEvent, secrets: [KEY, OTHER] });
          assert.equal(output, blank(stream), `size ${size}, drop ${dropUsageEvent}: ${errorEvent}`);
          assert.ok(tap.upstreamError !== undefined || errorEvent === failed);
        }
      }
    }
  });

  it('blanks a key split across two chunks exactly at every byte of it', () => {
    const stream = Buffer.from(roleChunk + chatError);
    const keyAt = stream.indexOf(KEY);
    for (let cut = keyAt; cut <= keyAt + KEY.length; cut++) {
      const { output } = run([stream.subarray(0, cut), stream.subarray(cut)], { dropUsageEvent: false, secrets: [KEY] });
      assert.equal(output, blank(stream.toString()), `cut at ${cut - keyAt}`);
    }
  });

  it('leaves model output alone: a delta echoing the key is forwarded as is, as the same chunk', () => {
    const echo = contentChunk(`the key is ${KEY}`);
    const tap = new SseUsageTap({ dropUsageEvent: false, secrets: [KEY] });
    const chunk = Buffer.from(roleChunk + echo);
    assert.equal(tap.push(chunk), chunk, 'whole events pass through untouched and uncopied');
    const generated = contentChunk(`an "error": {"message": "${KEY}"}`);
    assert.equal(run([Buffer.from(generated)], { dropUsageEvent: false, secrets: [KEY] }).output, generated, 'error-looking text inside a content string is not an error');
  });

  it('holds a partial event until it completes, so a keep-alive may go out meanwhile', () => {
    const tap = new SseUsageTap({ dropUsageEvent: false, secrets: [KEY] });
    assert.equal(tap.push(Buffer.from(chatError.slice(0, 60))), undefined);
    assert.equal(tap.atEventBoundary, true);
    assert.equal(tap.push(Buffer.from(chatError.slice(60)))?.toString(), blank(chatError));
  });

  it('without secrets (or with only short ones) forwards chunks as they come', () => {
    for (const secrets of [undefined, [], ['short']]) {
      const tap = new SseUsageTap({ dropUsageEvent: false, secrets });
      const half = Buffer.from(chatError.slice(0, 60));
      assert.equal(tap.push(half), half);
    }
  });
});
