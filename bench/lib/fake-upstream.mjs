// The fake OpenAI server every target talks to: a fixed ~600-byte chat.completion, or a stream of
// 20 chunk events plus a usage event and [DONE], written at once (or paced, for the slow-stream
// scenario). It answers only keys starting with "sk-upstream-", so a target that forwards the
// caller's key gets a 401, and it counts the keys it saw so the checks can prove the swap.
import { createServer } from 'node:http';

export const UPSTREAM_KEY_PREFIX = 'sk-upstream-';
export const MODEL = 'gpt-4o-mini';
const SERVED_MODEL = 'gpt-4o-mini-2024-07-18';
export const USAGE = { prompt_tokens: 19, completion_tokens: 18, total_tokens: 37 };

const JSON_CONTENT = 'Hello! This is the fixed benchmark answer.';
/** The 18 content pieces of the stream; the answer text is their concatenation. */
const PIECES = ['Hello', '!', ' This', ' is', ' a', ' streamed', ' benchmark', ' answer', ',', ' one', ' small', ' piece', ' per', ' chunk', ' event', ' as', ' usual', '.'];
export const STREAM_TEXT = PIECES.join('');
export const JSON_TEXT = JSON_CONTENT;

const usageObject = {
  ...USAGE,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
};

const completion = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-BenchAbCdEfGhIjKlMnOpQrStUvWx',
    object: 'chat.completion',
    created: 1741569952,
    model: SERVED_MODEL,
    choices: [{ index: 0, message: { role: 'assistant', content: JSON_CONTENT, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
    usage: usageObject,
    service_tier: 'default',
    system_fingerprint: 'fp_06737a9306',
  }),
);

function chunk(delta, finishReason, usage) {
  const base = { id: 'chatcmpl-BenchAbCdEfGhIjKlMnOpQrStUvWx', object: 'chat.completion.chunk', created: 1741569952, model: SERVED_MODEL, service_tier: 'default', system_fingerprint: 'fp_06737a9306' };
  const body = usage === undefined ? { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], usage: null } : { ...base, choices: [], usage };
  return Buffer.from(`data: ${JSON.stringify(body)}\n\n`);
}

/** 20 chunk events (role, 18 pieces, finish), the usage event, [DONE]: each written on its own. */
const streamEvents = [
  chunk({ role: 'assistant', content: '', refusal: null }, null),
  ...PIECES.map((piece) => chunk({ content: piece }, null)),
  chunk({}, 'stop'),
  chunk(undefined, undefined, usageObject),
  Buffer.from('data: [DONE]\n\n'),
];

export const JSON_BYTES = completion.length;
/** Idle connections close after this, so memory held for idle upstream sockets is let go after the slow streams. */
export const UPSTREAM_KEEPALIVE_MS = 5000;
export const STREAM_EVENT_COUNT = streamEvents.length;

const STREAM = /"stream"\s*:\s*true/;
const SLOW = /"user"\s*:\s*"bench-slow-(\d+)"/;

function reject(response, status, message, code) {
  const body = JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code } });
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

/** Starts the fake upstream on 127.0.0.1:port (0 picks one); resolves to the server and its counters. */
export function startFakeUpstream(port = 0) {
  const stats = { requests: 0, byKey: Object.create(null), openStreams: 0, maxOpenStreams: 0 };
  let sequence = 0;
  const server = createServer({ keepAliveTimeout: UPSTREAM_KEEPALIVE_MS, requestTimeout: 0 }, (request, response) => {
    if (request.url === '/__bench/stats') {
      const body = JSON.stringify(stats);
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      response.end(body);
      return;
    }
    if (request.url === '/__bench/reset-open-streams') {
      stats.maxOpenStreams = stats.openStreams;
      response.writeHead(204).end();
      return;
    }
    const parts = [];
    request.on('data', (part) => parts.push(part));
    request.on('end', () => {
      stats.requests++;
      const authorization = request.headers.authorization ?? '(none)';
      const key = authorization.startsWith('Bearer ') ? authorization.slice(7) : authorization;
      stats.byKey[key] = (stats.byKey[key] ?? 0) + 1;
      if (!key.startsWith(UPSTREAM_KEY_PREFIX)) return reject(response, 401, 'Incorrect API key provided.', 'invalid_api_key');
      if (request.method !== 'POST' || !request.url.endsWith('/v1/chat/completions')) return reject(response, 404, `Unknown path ${request.url}`, 'unknown_url');
      const text = Buffer.concat(parts).toString('latin1');
      const requestId = `req_bench${(++sequence).toString(16)}`;
      if (!STREAM.test(text)) {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': completion.length, 'x-request-id': requestId, 'openai-processing-ms': '1' });
        response.end(completion);
        return;
      }
      response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': requestId, 'openai-processing-ms': '1' });
      const slow = SLOW.exec(text);
      if (!slow) {
        for (const event of streamEvents) response.write(event);
        response.end();
        return;
      }
      // Paced: one event per interval, the way a model produces tokens; stops if the reader leaves.
      const intervalMs = Number(slow[1]);
      let next = 0;
      stats.openStreams++;
      stats.maxOpenStreams = Math.max(stats.maxOpenStreams, stats.openStreams);
      response.flushHeaders();
      const timer = setInterval(() => {
        if (response.destroyed) return stop();
        response.write(streamEvents[next++]);
        if (next === streamEvents.length) {
          response.end();
          stop();
        }
      }, intervalMs);
      let stopped = false;
      const stop = () => {
        if (stopped) return;
        stopped = true;
        clearInterval(timer);
        stats.openStreams--;
      };
      response.on('close', stop);
    });
  });
  server.keepAliveTimeout = UPSTREAM_KEEPALIVE_MS;
  server.headersTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => resolve({ server, stats, port: server.address().port }));
  });
}

// Run as its own process (pinned to the load generator's CPU): print the port, serve until killed.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await startFakeUpstream(Number(process.env.PORT ?? 0));
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
}
