import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { chatStreamEvents, FakeUpstream, sendSse } from '../helpers/fake-upstream.js';
import { runCli, spawnGateway, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { usageRecord } from '../helpers/usage-records.js';

/**
 * Misbehaving clients: slow, aborting, malformed, oversized, hostile and very many. The gateway
 * answers each with a defined error (or drops the connection), keeps its records, and keeps
 * serving everyone else. docs/reliability.md lists the outcomes.
 */

const TOKEN = 'client-faults-token';
const ADMIN = 'client-faults-admin-token-0123';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface RawResult {
  /** Everything the server sent before it closed the connection. */
  text: string;
  /** Milliseconds from connect to the server closing the connection. */
  closedAfterMs: number;
}

/** A raw TCP client: writes `head`, then `drip` every `everyMs` until the server closes the connection. */
function rawClient(port: number, head: string | Buffer, drip?: { bytes: string; everyMs: number }): { result: Promise<RawResult>; socket: Socket } {
  const started = Date.now();
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let timer: NodeJS.Timeout | undefined;
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(head);
  if (drip) timer = setInterval(() => void (socket.destroyed || socket.write(drip.bytes)), drip.everyMs);
  const result = new Promise<RawResult>((resolve) =>
    socket.on('close', () => {
      if (timer) clearInterval(timer);
      resolve({ text, closedAfterMs: Date.now() - started });
    }),
  );
  return { result, socket };
}

/** Timings of ordinary requests made while something else is going on. */
async function servedMeanwhile(url: string, count: number): Promise<number[]> {
  const timings: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = Date.now();
    const response = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}' });
    assert.equal(response.status, 200);
    await response.text();
    timings.push(Date.now() - started);
    await sleep(100);
  }
  return timings;
}

const chatHead = (path: string, length: number, requestId: string): string =>
  `POST ${path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\nX-Request-Id: ${requestId}\r\n\r\n`;

/** Every log line is one JSON object: nothing a client sent split a line or forged one. */
function assertLogLinesIntact(gateway: TestGateway): void {
  for (const line of gateway.logText().split('\n')) {
    assert.doesNotThrow(() => JSON.parse(line), `log line is JSON: ${line.slice(0, 200)}`);
    assert.ok(!line.includes('\r'), 'no raw CR in a log line');
  }
}

describe('client faults', () => {
  let fake: FakeUpstream;
  let gateway: TestGateway;
  let port: number;

  const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}, signal?: AbortSignal) =>
    fetch(`${gateway.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers }, body, signal });

  before(async () => {
    fake = await FakeUpstream.start();
    gateway = await startTestGateway({ BASE_URL: fake.url, APIKEY: 'sk-client-faults-upstream-0123', ACCESS_TOKEN: TOKEN, ADMIN_TOKEN: ADMIN, MAX_ATTEMPTS: '1', REQUEST_TIMEOUT: '1', MAX_HEADER_SIZE: '4KiB' });
    port = Number(new URL(gateway.url).port);
    // The first chat request loads the tokenizer (a few hundred ms): not what the timings below measure.
    await servedMeanwhile(gateway.url, 1);
  });
  after(async () => {
    assertLogLinesIntact(gateway);
    await gateway.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('slowloris headers: 100 clients dripping header lines get 408 and are closed at request_timeout, others are served meanwhile', async () => {
    const slow = Array.from({ length: 100 }, () => rawClient(port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n', { bytes: 'X-Drip: 1\r\n', everyMs: 100 }));
    const timings = await servedMeanwhile(gateway.url, 5);
    const results = await Promise.all(slow.map((client) => client.result));
    const closed = results.map((result) => result.closedAfterMs);
    console.log(`slowloris headers: ${results.length} connections closed after ${Math.min(...closed)}–${Math.max(...closed)} ms; other requests meanwhile took ${timings.join(', ')} ms`);
    for (const { text, closedAfterMs } of results) {
      assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      // Node checks the timeouts every half head-timeout: closed between 1 s and about 1.6 s.
      assert.ok(closedAfterMs >= 900 && closedAfterMs < 2500, `closed after ${closedAfterMs} ms`);
    }
    assert.ok(Math.max(...timings) < 750, `other requests took ${timings.join(', ')} ms`);
    assert.equal(fake.requests.length, 5, 'only the real requests reached the upstream');
  });

  it('slowloris bodies: a body dripping a byte at a time gets 408 at request_timeout; the /v1 request is recorded as aborted (499)', async () => {
    const v1 = Array.from({ length: 20 }, (_, i) => rawClient(port, chatHead('/v1/chat/completions', 1000, `slow-body-${i}`) + '{', { bytes: ' ', everyMs: 100 }));
    const apiChat = Array.from({ length: 20 }, (_, i) => rawClient(port, chatHead('/api/chat', 1000, `slow-api-body-${i}`) + '{', { bytes: ' ', everyMs: 100 }));
    const timings = await servedMeanwhile(gateway.url, 5);
    const results = await Promise.all([...v1, ...apiChat].map((client) => client.result));
    const closed = results.map((result) => result.closedAfterMs);
    console.log(`slowloris bodies: ${results.length} connections closed after ${Math.min(...closed)}–${Math.max(...closed)} ms; other requests meanwhile took ${timings.join(', ')} ms`);
    for (const { text, closedAfterMs } of results) {
      assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.ok(closedAfterMs >= 900 && closedAfterMs < 2500, `closed after ${closedAfterMs} ms`);
    }
    assert.ok(Math.max(...timings) < 750, `other requests took ${timings.join(', ')} ms`);
    for (let i = 0; i < 20; i++) {
      const record = await usageRecord(gateway, `slow-body-${i}`);
      assert.deepEqual([record.status, record.aborted, record.usage_source], [499, 1, 'none']);
    }
    assert.equal(fake.requests.length, 5);
  });

  it('idle connections that never send a byte are closed at the head timeout too', async () => {
    const idle = Array.from({ length: 50 }, () => rawClient(port, ''));
    for (const { closedAfterMs } of await Promise.all(idle.map((client) => client.result))) assert.ok(closedAfterMs < 2500, `closed after ${closedAfterMs} ms`);
  });

  it('abort mid-request (half a body, then the socket is destroyed): nothing reaches the upstream, /v1 records 499 aborted, the gateway serves on', async () => {
    for (const path of ['/v1/chat/completions', '/api/chat']) {
      const { socket } = rawClient(port, chatHead(path, 200, `half-${path.length}`) + '{"model":"gpt-4o-mini","messages":[{"role":"user",');
      await sleep(100);
      socket.destroy();
    }
    const record = await usageRecord(gateway, `half-${'/v1/chat/completions'.length}`);
    assert.deepEqual([record.status, record.aborted], [499, 1]);
    await sleep(100);
    assert.equal(fake.requests.length, 0);
    assert.ok(gateway.logs.some((line) => line.reqId === `half-${'/api/chat'.length}` && line.status === 499 && line.aborted === true), 'the /api/chat abort is logged');
    await servedMeanwhile(gateway.url, 1);
  });

  it('abort while the upstream is still thinking: the upstream connection is closed within 1 s, recorded 499 aborted', async () => {
    for (const [path, body] of [['/v1/chat/completions', '{"model":"gpt-4o-mini","messages":[]}'], ['/api/chat', '{"prompt":"Hi"}']] as const) {
      fake.script(() => undefined);
      const controller = new AbortController();
      const pending = post(path, body, { 'x-request-id': `thinking-${path.length}` }, controller.signal).catch(() => undefined);
      while (fake.requests.length === 0) await sleep(10);
      await sleep(100);
      const abortedAt = Date.now();
      controller.abort();
      const closedAt = await fake.last().closed;
      assert.ok(closedAt - abortedAt < 1000, `${path}: upstream closed ${closedAt - abortedAt} ms after the client left`);
      await pending;
      const record = await usageRecord(gateway, `thinking-${path.length}`);
      assert.deepEqual([record.status, record.aborted], [499, 1], path);
      fake.reset();
    }
  });

  it('abort mid-stream: the upstream connection is closed within 1 s, the record says aborted with the text so far estimated', async () => {
    for (const [path, body] of [['/v1/chat/completions', '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}'], ['/api/chat', '{"prompt":"Hi","stream":true}']] as const) {
      fake.script((_request, response) => sendSse(response, chatStreamEvents('gpt-4o-mini', 'a b c d e f g h i j k l m n o p q r s t', true), { delayMs: 100 }));
      const controller = new AbortController();
      const response = await post(path, body, { 'x-request-id': `mid-stream-${path.length}` }, controller.signal);
      const reader = response.body!.getReader();
      await reader.read();
      await reader.read();
      const abortedAt = Date.now();
      controller.abort();
      await reader.read().catch(() => undefined);
      const closedAt = await fake.last().closed;
      assert.ok(closedAt - abortedAt < 1000, `${path}: upstream closed ${closedAt - abortedAt} ms after the client left`);
      const record = await usageRecord(gateway, `mid-stream-${path.length}`);
      assert.deepEqual([record.status, record.aborted, record.usage_source], [499, 1, 'estimated'], path);
      fake.reset();
    }
  });

  it('invalid JSON: 400 invalid_json on /v1, the envelope with code 400 on /api/chat, nothing sent upstream', async () => {
    for (const bad of ['{"model": "gpt-4o-mini", ', '', 'null x', '\u0000']) {
      const v1 = await post('/v1/chat/completions', bad);
      const body = (await v1.json()) as { error: { code: string; type: string } };
      if (bad === '') {
        // An empty body is no body: relayed as is, like a GET, and the upstream decides.
        continue;
      }
      assert.equal(v1.status, 400, JSON.stringify(bad));
      assert.deepEqual([body.error.code, body.error.type], ['invalid_json', 'invalid_request_error']);
      const envelope = (await (await post('/api/chat', bad)).json()) as { code: number; data: unknown; msg: string };
      assert.equal(envelope.code, 400);
      assert.equal(envelope.data, null);
      assert.match(envelope.msg, /JSON/);
    }
    assert.equal(fake.requests.filter((request) => request.path === '/v1/chat/completions').length, 1, 'only the empty body went through');
  });

  it('deeply nested JSON (100,000 levels): 400 at once on every route, no stack overflow, the gateway serves on', async () => {
    const depth = 100_000;
    const bodies = ['['.repeat(depth) + ']'.repeat(depth), `{"model":"gpt-4o-mini","messages":[{"role":"user","content":${'['.repeat(depth)}${']'.repeat(depth)}}]}`, '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)];
    for (const body of bodies) {
      for (const path of ['/v1/chat/completions', '/v1/embeddings', '/api/chat']) {
        const started = Date.now();
        const response = await post(path, body);
        const text = await response.text();
        assert.ok(Date.now() - started < 1000, `${path} answered in ${Date.now() - started} ms`);
        assert.match(text, /nests arrays and objects deeper than 256 levels/, `${path}: ${text.slice(0, 200)}`);
        assert.equal(response.status, path === '/api/chat' ? 200 : 400);
      }
    }
    // Legitimate nesting (a tool's JSON Schema a few dozen levels deep) passes.
    const schema = '{"type":"object","properties":{"x":'.repeat(40) + '{"type":"string"}' + '}}'.repeat(40);
    const tools = await post('/v1/chat/completions', `{"model":"gpt-4o-mini","messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":${schema}}}]}`);
    assert.equal(tools.status, 200);
    assert.equal(fake.requests.length, 1);
  });

  it('non-UTF-8 bytes: relayed byte-exact inside /v1 JSON strings, replaced by U+FFFD in an /api/chat prompt, 400 outside strings', async () => {
    const invalid = Buffer.from([0xff, 0xfe, 0xc3, 0x28]);
    const v1Body = Buffer.concat([Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"bad '), invalid, Buffer.from('"}]}')]);
    const relayed = await post('/v1/chat/completions', v1Body);
    assert.equal(relayed.status, 200);
    assert.ok(fake.last().body.equals(v1Body), 'the caller’s bytes reach the upstream unchanged');

    const prompt = Buffer.concat([Buffer.from('{"prompt":"bad '), invalid, Buffer.from('"}')]);
    const envelope = (await (await post('/api/chat', prompt)).json()) as { code: number };
    assert.equal(envelope.code, 200);
    const sent = fake.last().json as { messages: Array<{ content: string }> };
    assert.equal(sent.messages.at(-1)!.content, 'bad \ufffd\ufffd\ufffd(');

    const outside = await post('/v1/chat/completions', Buffer.concat([Buffer.from('{"model":'), invalid, Buffer.from('}')]));
    assert.equal(outside.status, 400);

    // In headers: a request id that is not a plain token is replaced, a token with such bytes is unknown.
    const head = Buffer.concat([Buffer.from('GET /v1/models HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\nX-Request-Id: id-'), invalid, Buffer.from('\r\nAuthorization: Bearer '), invalid, Buffer.from('\r\n\r\n')]);
    const { text } = await rawClient(port, head).result;
    assert.match(text, /^HTTP\/1\.1 401 /);
    assert.match(text, /\r\nx-request-id: req_[A-Za-z0-9_-]+\r\n/);
  });

  it('oversized headers: 431 from Node past max_header_size (4 KiB here), and the next request is served', async () => {
    const big = await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}`, 'x-padding': 'x'.repeat(8 * 1024) } });
    assert.equal(big.status, 431);
    // Many small headers count the same as one big one.
    const many = rawClient(port, `GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n${Array.from({ length: 600 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`);
    assert.match((await many.result).text, /^HTTP\/1\.1 431 /);
    await servedMeanwhile(gateway.url, 1);
  });

  it('CR/LF in a model name never reaches a response header or splits a log line', async () => {
    const model = 'gpt-4o-mini\r\nX-Injected: yes\r\n\r\n{"forged":true}';
    const v1 = await post('/v1/chat/completions', JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }] }), { 'x-request-id': 'crlf-model' });
    assert.equal(v1.status, 200);
    assert.equal(v1.headers.get('x-injected'), null);
    assert.equal(fake.last().json?.model, model, 'it is data: forwarded inside the JSON body');
    const apiChat = await post('/api/chat', JSON.stringify({ prompt: 'Hi', model }));
    assert.equal(apiChat.headers.get('x-injected'), null);
    for (const [name, value] of [...v1.headers, ...apiChat.headers]) assert.ok(!/[\r\n]/.test(name + value), `header ${name}`);
    const record = await usageRecord(gateway, 'crlf-model');
    assert.equal(record.model, model, 'recorded as sent');
    const logged = gateway.logs.find((line) => line.reqId === 'crlf-model');
    assert.equal(logged?.model, model, 'logged as an escaped JSON string, on one line');
    assertLogLinesIntact(gateway);
  });

  it('CR/LF in key metadata (admin API) stays data: JSON in admin answers, escaped in the CLI, out of headers and log lines', async () => {
    const hostile = 'line one\r\nSet-Cookie: session=stolen\r\n\u001b[31mred';
    const created = await fetch(`${gateway.adminUrl}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'hostile-meta', metadata: { note: hostile }, bot_desc: hostile, models: ['gpt-4o-mini'] }),
    });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('set-cookie'), null);
    const { key } = (await created.json()) as { key: string };
    const listed = await fetch(`${gateway.adminUrl}/admin/keys/hostile-meta`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(((await listed.json()) as { metadata: { note: string } }).metadata.note, hostile);
    assert.equal(listed.headers.get('set-cookie'), null);

    const used = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}' });
    assert.equal(used.status, 200);
    assert.equal(used.headers.get('set-cookie'), null);
    assert.equal((fake.last().json as { messages: Array<{ content: string }> }).messages[0]!.content, hostile, 'the persona goes upstream as JSON data');

    const env = { DATABASE_URL: gateway.config.databaseUrl };
    for (const args of [['keys', 'list'], ['keys', 'show', 'hostile-meta']]) {
      const result = await runCli(args, { env });
      assert.equal(result.code, 0, result.stderr);
      assert.ok(!result.stdout.includes('\r') && !result.stdout.includes('\u001b'), `${args.join(' ')} escapes control characters`);
      assert.ok(!/^Set-Cookie/m.test(result.stdout), 'no line starts with the injected text');
    }
    assertLogLinesIntact(gateway);
  });
});

/** Sockets the process holds open (listeners and connections), from /proc. */
function socketsOf(pid: number): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) count++;
    } catch {
      // closed between the listing and the readlink
    }
  }
  return count;
}

async function openConnections(port: number, count: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  // In batches: the listen backlog is 511, and a dropped SYN costs a 1 s retransmit.
  for (let at = 0; at < count; at += 250) {
    const batch = Array.from({ length: Math.min(250, count - at) }, () => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      sockets.push(socket);
      return new Promise<void>((resolve) => {
        socket.once('connect', () => resolve());
        socket.once('close', () => resolve());
      });
    });
    await Promise.all(batch);
  }
  return sockets;
}

describe('many connections', () => {
  // 5,000 client sockets in this process plus 5,000 in the gateway's; each process needs that many descriptors.
  const limit = Number(execFileSync('/bin/sh', ['-c', 'ulimit -n']).toString().trim());
  const wanted = 5000;
  const count = Number.isFinite(limit) ? Math.min(wanted, limit - 500) : wanted;

  it(`holds ${count} concurrent connections and still answers a normal request at once${count < wanted ? ` (scaled down: ulimit -n is ${limit})` : ''}`, async () => {
    const fake = await FakeUpstream.start();
    const gateway = await spawnGateway({ env: { BASE_URL: fake.url, ACCESS_TOKEN: TOKEN, DATABASE_URL: 'sqlite::memory:' } });
    const sockets: Socket[] = [];
    try {
      const port = Number(new URL(gateway.url).port);
      sockets.push(...(await openConnections(port, count)));
      const open = sockets.filter((socket) => !socket.destroyed && socket.readyState === 'open').length;
      assert.equal(open, count, 'every connection was accepted');
      // Half of them start a request and stall in the middle of its head.
      for (const socket of sockets.slice(0, count / 2)) socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n');
      let held = 0;
      for (let i = 0; i < 50 && held < count; i++) {
        held = socketsOf(gateway.child.pid!);
        if (held < count) await sleep(100);
      }
      assert.ok(held >= count, `the gateway holds ${held} sockets`);
      const started = Date.now();
      const response = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"model":"gpt-4o-mini","messages":[]}' });
      assert.equal(response.status, 200);
      await response.text();
      const took = Date.now() - started;
      console.log(`many connections: ${count} open (${held} sockets in the gateway), a normal request answered in ${took} ms`);
      assert.ok(took < 1000, `answered in ${took} ms beside ${count} open connections`);
      assert.equal((await fetch(`${gateway.url}/healthz`)).status, 200);
    } finally {
      for (const socket of sockets) socket.destroy();
      gateway.child.kill('SIGKILL');
      await fake.close();
    }
  });

  it('refuses connections past max_connections and serves again once they close', async () => {
    const fake = await FakeUpstream.start();
    const gateway = await spawnGateway({ env: { BASE_URL: fake.url, ACCESS_TOKEN: TOKEN, DATABASE_URL: 'sqlite::memory:', MAX_CONNECTIONS: '20' } });
    const port = Number(new URL(gateway.url).port);
    const sockets = await openConnections(port, 20);
    try {
      await sleep(200);
      const extra = rawClient(port, 'GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n');
      const { text, closedAfterMs } = await extra.result;
      assert.equal(text, '', 'the 21st connection is closed without an answer');
      assert.ok(closedAfterMs < 1000);
      for (const socket of sockets) socket.destroy();
      await sleep(200);
      assert.equal((await fetch(`${gateway.url}/healthz`)).status, 200);
    } finally {
      for (const socket of sockets) socket.destroy();
      gateway.child.kill('SIGKILL');
      await fake.close();
    }
  });
});
