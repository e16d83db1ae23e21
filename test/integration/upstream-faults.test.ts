import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { chatStreamEvents, FakeUpstream, sendJson } from '../helpers/fake-upstream.js';
import { openDatabase } from '../../src/storage/database.js';
import { spawnGateway, startTestGateway, tempConfigDir, type TestGateway } from '../helpers/gateway.js';
import { usageRecord } from '../helpers/usage-records.js';

/**
 * Every way an upstream can fail, one test each: what the client sees (an OpenAI-shaped error,
 * or mid-stream a final SSE error event and the end of the stream), how long it takes (never past
 * the configured timeout), and what the usage record says. docs/reliability.md lists the outcomes.
 */

const TOKEN = 'upstream-faults-token';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A base URL nothing listens on: a fake that was started and closed again. */
async function refusedUrl(): Promise<string> {
  const closed = await FakeUpstream.start();
  await closed.close();
  return closed.url;
}

const upstreamKey = (name: string): string => `sk-faults-${name}-0123456789abcdef`;

function entry(name: string, baseUrl: string, models: string[], weight = 1): Record<string, unknown> {
  return { name, type: 'openai', base_url: baseUrl, api_keys: [upstreamKey(name)], models, weight };
}

type ErrorBody = { error: { message: string; type: string; param: unknown; code: string } };

const lastEvent = (text: string): string => text.trimEnd().split('\n\n').at(-1) ?? '';

describe('upstream faults with one attempt (max_attempts 1): the client gets a defined error in bounded time', () => {
  let fake: FakeUpstream;
  let gateway: TestGateway;

  const post = (path: string, body: Record<string, unknown>) =>
    fetch(`${gateway.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const chat = (model: string, extra: Record<string, unknown> = {}) => post('/v1/chat/completions', { model, messages: [{ role: 'user', content: 'Hi' }], ...extra });

  async function expectError(response: Response, status: number, code: string, message: RegExp): Promise<ErrorBody> {
    assert.equal(response.status, status);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await response.json()) as ErrorBody;
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.code, code);
    assert.equal(body.error.type, 'server_error');
    assert.match(body.error.message, message);
    return body;
  }

  before(async () => {
    fake = await FakeUpstream.start();
    gateway = await startTestGateway(
      { ACCESS_TOKEN: TOKEN, MAX_ATTEMPTS: '1', CONNECT_TIMEOUT: '1', FIRST_BYTE_TIMEOUT: '1', IDLE_TIMEOUT: '1', SSE_KEEPALIVE: '0.3', CIRCUIT_MIN_REQUESTS: '100000' },
      {
        upstreams: [
          entry('fake', fake.url, ['gpt-4o-mini']),
          entry('refused', await refusedUrl(), ['refused-model']),
          // `.invalid` never resolves (RFC 6761): the lookup fails locally, no traffic leaves the machine.
          entry('nowhere', 'http://upstream.invalid:9/v1', ['dns-model']),
          // TLS spoken to a plain-HTTP server: the handshake fails.
          entry('tls', fake.url.replace('http://', 'https://'), ['tls-model']),
        ],
      },
    );
  });
  after(async () => {
    await gateway.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('connection refused: 502 upstream_unreachable at once', async () => {
    const started = Date.now();
    const response = await chat('refused-model');
    await expectError(response, 502, 'upstream_unreachable', /^Upstream "refused" is unreachable: connection refused\.$/);
    assert.ok(Date.now() - started < 1000);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [502, 'upstream_unreachable', 'none']);
  });

  it('connection reset before the response headers: 502 upstream_unreachable', async () => {
    fake.script((_request, _response, socket) => void socket.resetAndDestroy());
    const response = await chat('gpt-4o-mini');
    await expectError(response, 502, 'upstream_unreachable', /^Upstream "fake" is unreachable: (connection reset|connection closed by the upstream)\.$/);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [502, 'upstream_unreachable', 'none']);
  });

  it('connection reset mid-stream: the events so far, then an SSE error event, and the text so far is metered', async () => {
    fake.script(async (_request, response, socket) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const event of chatStreamEvents('gpt-4o-mini', 'one two three four five six', true).slice(0, 4)) response.write(`data: ${event}\n\n`);
      await sleep(50);
      socket.resetAndDestroy();
    });
    const response = await chat('gpt-4o-mini', { stream: true });
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.match(text, /"content":"two "/);
    assert.match(lastEvent(text), /^data: \{"error":\{"message":"Upstream \\"fake\\" is unreachable: [^"]+","type":"server_error","param":null,"code":"upstream_unreachable"\}\}$/);
    assert.ok(text.endsWith('\n\n'));
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [200, 'upstream_unreachable', 'estimated']);
    assert.ok(record.completion_tokens > 0);
  });

  it('connection reset in the middle of a JSON body: the client connection is cut, never a short body that looks whole', async () => {
    fake.script(async (_request, response, socket) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      response.write('{"id":"chatcmpl-cut","choices":[{"index":0,"message":{"role":"assistant","content":"half');
      await sleep(50);
      socket.resetAndDestroy();
    });
    const response = await chat('gpt-4o-mini');
    assert.equal(response.status, 200);
    await assert.rejects(response.text(), /terminated/);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [200, 'upstream_unreachable', 'none']);
  });

  it('hang before the response headers: 504 upstream_timeout after first_byte_timeout (1 s)', async () => {
    fake.script(() => undefined);
    const started = Date.now();
    const response = await chat('gpt-4o-mini');
    const elapsed = Date.now() - started;
    await expectError(response, 504, 'upstream_timeout', /^Upstream "fake" sent no response within 1 s\.$/);
    assert.ok(elapsed >= 900 && elapsed < 2500, `answered after ${elapsed} ms`);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [504, 'upstream_timeout', 'none']);
    const closed = await Promise.race([fake.last().closed.then(() => true), sleep(1000).then(() => false)]);
    assert.ok(closed, 'the gateway closed its connection to the silent upstream');
  });

  it('hang before the response headers of a stream: keep-alives, then an SSE error event at first_byte_timeout', async () => {
    fake.script(() => undefined);
    const started = Date.now();
    const response = await chat('gpt-4o-mini', { stream: true });
    assert.equal(response.status, 200);
    const text = await response.text();
    const elapsed = Date.now() - started;
    assert.ok(text.startsWith(': keep-alive\n\n'), text);
    assert.match(lastEvent(text), /^data: \{"error":\{"message":"Upstream \\"fake\\" sent no response within 1 s\.","type":"server_error","param":null,"code":"upstream_timeout"\}\}$/);
    assert.ok(elapsed < 2500, `ended after ${elapsed} ms`);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [504, 'upstream_timeout', 'none']);
  });

  it('hang mid-stream: keep-alives, then an SSE error event at idle_timeout (1 s)', async () => {
    fake.script((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const event of chatStreamEvents('gpt-4o-mini', 'one two three', true).slice(0, 3)) response.write(`data: ${event}\n\n`);
    });
    const started = Date.now();
    const response = await chat('gpt-4o-mini', { stream: true });
    const text = await response.text();
    const elapsed = Date.now() - started;
    assert.match(text, /"content":"two "/);
    assert.match(text, /: keep-alive\n\n/);
    assert.match(lastEvent(text), /^data: \{"error":\{"message":"Upstream \\"fake\\" stopped sending for 1 s\.","type":"server_error","param":null,"code":"upstream_timeout"\}\}$/);
    assert.ok(elapsed >= 900 && elapsed < 2500, `ended after ${elapsed} ms`);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [200, 'upstream_timeout', 'estimated']);
    assert.ok(record.completion_tokens > 0);
  });

  it('hang in the middle of a JSON body: the client connection is cut at idle_timeout', async () => {
    fake.script((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      response.write('{"id":"chatcmpl-hang","choices":[');
    });
    const started = Date.now();
    const response = await chat('gpt-4o-mini');
    await assert.rejects(response.text(), /terminated/);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 2500, `cut after ${elapsed} ms`);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [200, 'upstream_timeout', 'none']);
  });

  it('unresolvable host (DNS failure): 502 upstream_unreachable naming DNS, within connect_timeout', async () => {
    const started = Date.now();
    const response = await chat('dns-model');
    const body = await expectError(response, 502, 'upstream_unreachable', /^Upstream "nowhere" is unreachable: (host not found \(DNS\)|DNS lookup failed)\.$|^Upstream "nowhere" could not be connected within 1 s\.$/);
    assert.doesNotMatch(body.error.message, /invalid:9|http/, 'the upstream URL is not shown');
    assert.ok(Date.now() - started < 2500);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.equal(record.status, 502);
    assert.equal(record.error_code, 'upstream_unreachable');
  });

  it('TLS failure (https spoken to a plain-HTTP server): 502 upstream_unreachable naming TLS', async () => {
    const response = await chat('tls-model');
    await expectError(response, 502, 'upstream_unreachable', /^Upstream "tls" failed TLS \(ERR_SSL_[A-Z_]+\)\.$/);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [502, 'upstream_unreachable', 'none']);
  });

  it('malformed JSON at 200: /v1 relays the bytes as they came (usage none); /api/chat answers 502 upstream_error', async () => {
    const broken = '{"id":"chatcmpl-x","choices":[{"message":{"content":"oops"}},,]';
    fake.script((_request, response) => sendJson(response, 200, broken), 2);
    const relayed = await chat('gpt-4o-mini');
    assert.equal(relayed.status, 200);
    assert.equal(await relayed.text(), broken, 'a byte relay does not parse what it forwards');
    const relayedRecord = await usageRecord(gateway, relayed.headers.get('x-request-id'));
    assert.deepEqual([relayedRecord.status, relayedRecord.error_code, relayedRecord.usage_source], [200, null, 'none']);

    const envelope = await post('/api/chat', { prompt: 'Hi' });
    assert.deepEqual(await envelope.json(), { code: 502, data: null, msg: 'Upstream "fake" sent a body that is not JSON.' });
    const record = await usageRecord(gateway, envelope.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [502, 'upstream_error', 'none']);
  });

  it('malformed SSE (events that are not JSON, a line without a field, no [DONE]): relayed, then an SSE error event', async () => {
    const garbage = 'data: {"choices":[{"delta":{"content":"ok "}}]}\n\ndata: {not json\n\nthis line has no colon\n\ndata: [1,2\n\n';
    fake.script((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end(garbage);
    }, 2);
    const response = await chat('gpt-4o-mini', { stream: true, stream_options: { include_usage: true } });
    const text = await response.text();
    assert.ok(text.startsWith(garbage), 'the bytes are forwarded untouched');
    assert.match(lastEvent(text), /^data: \{"error":\{"message":"The upstream ended the stream before it was complete\.","type":"server_error","param":null,"code":"upstream_error"\}\}$/);
    const record = await usageRecord(gateway, response.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code, record.usage_source], [200, 'upstream_error', 'estimated']);

    const envelope = await post('/api/chat', { prompt: 'Hi', stream: true });
    const events = (await envelope.text()).trimEnd().split('\n\n');
    assert.equal(events[0], 'data: {"delta":"ok "}');
    assert.equal(events.at(-1), 'event: error\ndata: {"code":502,"data":null,"msg":"Upstream \\"fake\\" ended the stream before it was complete."}');
    const envelopeRecord = await usageRecord(gateway, envelope.headers.get('x-request-id'));
    assert.deepEqual([envelopeRecord.status, envelopeRecord.error_code, envelopeRecord.usage_source], [502, 'upstream_error', 'estimated']);
  });

  it('a 200 with an HTML body: 502 upstream_error on /v1 and /api/chat, streamed or not', async () => {
    const page = '<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>';
    fake.script((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(page);
    }, 4);
    for (const stream of [false, true]) {
      const response = await chat('gpt-4o-mini', { stream });
      const text = await response.text();
      if (stream && response.status === 200) {
        // The stream was already promised (keep-alive interval passed): the error comes as its last event.
        assert.match(lastEvent(text), /"code":"upstream_error"/);
      } else {
        assert.equal(response.status, 502, text);
        const body = JSON.parse(text) as ErrorBody;
        assert.equal(body.error.code, 'upstream_error');
        assert.match(body.error.message, /^Upstream "fake" answered 200 with an HTML page instead of the API's JSON; check its base_url\.$/);
      }
      const record = await usageRecord(gateway, response.headers.get('x-request-id'));
      assert.deepEqual([record.status, record.error_code, record.usage_source], [502, 'upstream_error', 'none']);
    }
    const plain = await post('/api/chat', { prompt: 'Hi' });
    assert.deepEqual(await plain.json(), { code: 502, data: null, msg: 'Upstream "fake" sent a body that is not JSON.' });
    const streamed = await post('/api/chat', { prompt: 'Hi', stream: true });
    assert.deepEqual(await streamed.json(), { code: 502, data: null, msg: 'Upstream "fake" answered a stream request with "text/html; charset=utf-8", not an event stream.' });
    const record = await usageRecord(gateway, streamed.headers.get('x-request-id'));
    assert.deepEqual([record.status, record.error_code], [502, 'upstream_error']);
  });
});

describe('upstream faults with retries on and a second, healthy upstream', () => {
  let fakes: { reset: FakeUpstream; failing: FakeUpstream; silent: FakeUpstream; healthy: FakeUpstream };
  let gateway: TestGateway;

  before(async () => {
    fakes = { reset: await FakeUpstream.start(), failing: await FakeUpstream.start(), silent: await FakeUpstream.start(), healthy: await FakeUpstream.start() };
    fakes.reset.script((_request, _response, socket) => void socket.resetAndDestroy(), Infinity);
    fakes.failing.script((_request, response) => sendJson(response, 500, { error: { message: 'boom', type: 'server_error', param: null, code: null } }), Infinity);
    fakes.silent.script(() => undefined, Infinity);
    gateway = await startTestGateway(
      { ACCESS_TOKEN: TOKEN, MAX_ATTEMPTS: '3', RETRY_BASE_DELAY: '0', FIRST_BYTE_TIMEOUT: '0.5', CIRCUIT_MIN_REQUESTS: '100000' },
      {
        upstreams: [
          // The faulty upstreams weigh 1000 times more, so nearly every first attempt meets the fault.
          entry('refused', await refusedUrl(), ['m-refused'], 1000),
          entry('reset', fakes.reset.url, ['m-reset'], 1000),
          entry('failing', fakes.failing.url, ['m-500'], 1000),
          entry('silent', fakes.silent.url, ['m-hang'], 1000),
          entry('healthy', fakes.healthy.url, ['*']),
        ],
      },
    );
  });
  after(async () => {
    await gateway.close();
    await Promise.all(Object.values(fakes).map((fake) => fake.close()));
  });

  for (const [fault, model] of [['connection refused', 'm-refused'], ['reset before headers', 'm-reset'], ['HTTP 500', 'm-500'], ['hang before headers', 'm-hang']] as const) {
    it(`${fault}: the client sees success from the healthy upstream`, async () => {
      const responses = await Promise.all(
        Array.from({ length: 4 }, () =>
          fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }] }) }),
        ),
      );
      for (const response of responses) {
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('x-openai-api-upstream'), 'healthy');
        assert.equal(((await response.json()) as { object: string }).object, 'chat.completion');
        const record = await usageRecord(gateway, response.headers.get('x-request-id'));
        assert.deepEqual([record.status, record.error_code, record.usage_source, record.upstream], [200, null, 'upstream', 'healthy']);
      }
      assert.ok(responses.some((response) => response.headers.get('x-openai-api-attempts') === '2'), 'some request met the fault first');
    });
  }
});

/** Resident set size of a process, and its peak since start, in bytes (Linux /proc). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

describe('a huge upstream body', () => {
  it('relays a 50 MB JSON answer as a stream with backpressure: a stalled client holds the upstream back, gateway RSS stays flat, usage read from the tail', async () => {
    const SIZE = 50 * 1024 * 1024;
    const fake = await FakeUpstream.start();
    const filler = Buffer.alloc(64 * 1024, 'A');
    const head = '{"object":"list","model":"text-embedding-3-small","data":[{"object":"embedding","index":0,"embedding":"';
    const tail = '"}],"usage":{"prompt_tokens":7,"total_tokens":7}}';
    let sent = 0;
    const bigAnswer = async (_request: unknown, response: ServerResponse): Promise<void> => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(SIZE) });
      response.write(head);
      let left = SIZE - head.length - tail.length;
      while (left > 0) {
        const piece = left >= filler.length ? filler : filler.subarray(0, left);
        left -= piece.length;
        sent += piece.length;
        if (!response.write(piece)) await new Promise((resolve) => response.once('drain', resolve));
      }
      response.end(tail);
    };
    const dir = tempConfigDir();
    const file = join(dir, 'usage.sqlite');
    const gateway = await spawnGateway({ cwd: dir, env: { BASE_URL: fake.url, ACCESS_TOKEN: TOKEN, DATABASE_URL: `sqlite:${file}`, USAGE_FLUSH_INTERVAL: '0.05', MAX_ATTEMPTS: '1' } });
    const embed = (input: string) => fetch(`${gateway.url}/v1/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'text-embedding-3-small', input }) });
    const mib = (bytes: number): string => (bytes / 1048576).toFixed(1);
    try {
      const pid = gateway.child.pid!;
      // Warm the path (routes, tokenizer, database) so the measurement sees only the body.
      await (await embed('warm')).text();
      await sleep(200);
      fake.script(bigAnswer);
      const before = memoryOf(pid);
      const response = await embed('big');
      assert.equal(response.status, 200);
      const reader = response.body!.getReader();
      let received = 0;
      let end = '';
      const take = (piece: Uint8Array): void => {
        received += piece.length;
        end = (end + Buffer.from(piece).toString('latin1')).slice(-tail.length);
      };
      const first = await reader.read();
      take(first.value!);
      // The client stops reading: a buffering relay would now pull the whole body into memory.
      await sleep(1000);
      const stalled = memoryOf(pid);
      const sentWhileStalled = sent;
      let highest = stalled.rss;
      const sampler = setInterval(() => (highest = Math.max(highest, memoryOf(pid).rss)), 10);
      try {
        for (let next = await reader.read(); !next.done; next = await reader.read()) take(next.value);
      } finally {
        clearInterval(sampler);
      }
      console.log(`huge body: ${mib(SIZE)} MiB; upstream had sent ${mib(sentWhileStalled)} MiB while the client stalled; gateway RSS ${mib(before.rss)} MiB before, ${mib(stalled.rss)} MiB stalled, ${mib(highest)} MiB highest while relaying the rest`);
      assert.equal(received, SIZE);
      assert.equal(end, tail);
      assert.ok(sentWhileStalled < 16 * 1024 * 1024, `backpressure reached the upstream: ${mib(sentWhileStalled)} MiB sent while the client read nothing`);
      assert.ok(stalled.rss - before.rss < 16 * 1024 * 1024, `RSS grew ${mib(stalled.rss - before.rss)} MiB while the client stalled`);
      // Relaying allocates a 64 KiB buffer per chunk that only the GC returns; bounded, but not zero.
      assert.ok(highest - before.rss < SIZE, `RSS grew ${mib(highest - before.rss)} MiB relaying ${mib(SIZE)} MiB`);
      gateway.child.kill('SIGTERM');
      assert.equal((await gateway.exited).code, 0);
      const database = await openDatabase(`sqlite:${file}`);
      const rows = await database.db.selectFrom('usage_records').select(['status', 'usage_source', 'total_tokens', 'error_code']).orderBy('id').execute();
      await database.close();
      assert.deepEqual(rows.at(-1), { status: 200, usage_source: 'upstream', total_tokens: 7, error_code: null });
    } finally {
      gateway.child.kill('SIGKILL');
      await fake.close();
    }
  });
});
