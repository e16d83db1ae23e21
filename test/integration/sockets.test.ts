import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { RealtimeServerEvent } from 'openai/resources/realtime/realtime';
import type { ResponsesServerEvent } from 'openai/resources/responses/responses';
import { ResponsesWS } from 'openai/resources/responses/ws';
import WebSocket from 'ws';
import { runCodex } from '../helpers/codex.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { usageRecord } from '../helpers/usage-records.js';

const ADMIN = 'admin-token-sockets-0123456789';
const ACCESS = 'owner-access-token-sockets';
const UPSTREAM_KEY = 'sk-upstream-sockets-0123456789';
const COMPAT_KEY = 'sk-compat-sockets-0123456789';
const USAGE = { input_tokens: 120, input_tokens_details: { cached_tokens: 64 }, output_tokens: 30, output_tokens_details: { reasoning_tokens: 12 }, total_tokens: 150 };
/** gpt-4o-mini: 0.15 input, 0.075 cached input, 0.6 output (USD per 1M tokens). */
const MINI_COST = ((120 - 64) * 0.15 + 64 * 0.075 + 30 * 0.6) / 1e6;

type Json = Record<string, unknown>;

/** A raw WebSocket client: every event it got, and waits for the next of a type or for the close. */
interface Client {
  ws: WebSocket;
  /** The 101's headers. */
  headers: Record<string, string | string[] | undefined>;
  events: Json[];
  next(type: string, timeoutMs?: number): Promise<Json>;
  closed: Promise<{ code: number; reason: string }>;
  send(event: Json | string): void;
}

/** A refused handshake: the HTTP answer the gateway gave instead of switching protocols. */
interface Refused {
  status: number;
  body: string;
}

function open(url: string, options: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<Client | Refused> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers });
    const events: Json[] = [];
    /** Events already handed to a `next()` caller: each is returned once. */
    const taken = new Set<Json>();
    const waiters: Array<{ type: string; resolve: (event: Json) => void }> = [];
    ws.on('message', (data) => {
      const event = JSON.parse(String(data)) as Json;
      events.push(event);
      const waiter = waiters.find((candidate) => candidate.type === event.type);
      if (waiter === undefined) return;
      waiters.splice(waiters.indexOf(waiter), 1);
      taken.add(event);
      waiter.resolve(event);
    });
    const closed = new Promise<{ code: number; reason: string }>((done) => ws.on('close', (code, reason) => done({ code, reason: String(reason) })));
    let headers: Client['headers'] = {};
    ws.once('upgrade', (response) => (headers = response.headers));
    ws.once('open', () =>
      resolve({
        ws,
        headers,
        events,
        closed,
        send: (event) => ws.send(typeof event === 'string' ? event : JSON.stringify(event)),
        next: (type, timeoutMs = 5_000) =>
          new Promise((done, fail) => {
            const early = events.find((event) => event.type === type && !taken.has(event));
            if (early !== undefined) {
              taken.add(early);
              done(early);
              return;
            }
            const timer = setTimeout(() => fail(new Error(`no ${type} within ${timeoutMs} ms; got ${events.map((event) => event.type).join(', ')}`)), timeoutMs);
            waiters.push({ type, resolve: (event) => (clearTimeout(timer), done(event)) });
          }),
      }),
    );
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    ws.once('error', (error) => {
      if (ws.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

function opened(result: Client | Refused): Client {
  if ('status' in result) assert.fail(`the handshake was refused with ${result.status}: ${result.body}`);
  return result;
}

function refused(result: Client | Refused): Refused {
  if (!('status' in result)) {
    result.ws.terminate();
    assert.fail('the handshake was accepted');
  }
  return result;
}

/**
 * WebSockets through the gateway (issue 12): Responses WebSocket mode and Realtime, relayed to a
 * fake upstream that speaks both, with app keys confined and every turn metered — tried with the
 * official SDK's clients, Codex CLI and raw sockets, and the way a restricted key would try to
 * escape (other models, other keys' responses, the browser's key subprotocol, budgets).
 */
describe('WebSocket relay', () => {
  let fake: FakeUpstream;
  let compat: FakeUpstream;
  let gateway: TestGateway;
  const keys: Record<string, string> = {};
  let ws: string;

  const admin = async (body: Json): Promise<string> => {
    const response = await fetch(`${gateway.adminUrl}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = (await response.json()) as { key: string };
    assert.equal(response.status, 201, JSON.stringify(answer));
    return answer.key;
  };

  before(async () => {
    fake = await FakeUpstream.start({ websockets: true });
    compat = await FakeUpstream.start();
    const upstreams = [
      { name: 'openai', type: 'openai', base_url: fake.url, api_keys: [UPSTREAM_KEY], models: ['gpt-*'] },
      { name: 'compat', type: 'openai-compatible', base_url: compat.url, api_keys: [COMPAT_KEY], models: ['llama-*'] },
    ];
    gateway = await startTestGateway({ ACCESS_TOKEN: ACCESS, ADMIN_TOKEN: ADMIN, MAX_ATTEMPTS: '1', UPSTREAMS: JSON.stringify(upstreams) });
    ws = gateway.url.replace('http', 'ws');
    keys.agent = await admin({ name: 'agent', models: ['gpt-4o-mini', 'gpt-realtime', 'llama-*'] });
    keys.other = await admin({ name: 'other' });
    keys.narrow = await admin({ name: 'narrow', models: ['gpt-4o-mini'] });
    keys.tight = await admin({ name: 'tight', budget_tokens: 200, budget_period: 'day' });
    keys.voice = await admin({ name: 'voice', models: ['gpt-realtime'], budget_tokens: 100, budget_period: 'day' });
    keys.persona = await admin({ name: 'persona', bot_desc: 'You are a pirate.' });
  });
  after(async () => {
    await gateway.close();
    await fake.close();
    await compat.close();
  });
  beforeEach(() => {
    fake.reset();
    compat.reset();
    fake.objects.responseUsage = { ...USAGE };
  });

  describe('Responses WebSocket mode', () => {
    it("relays the SDK's turns with the server's key, chains them, and meters each turn with cached and reasoning tokens", async () => {
      const client = new OpenAI({ apiKey: keys.agent!, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
      const socket = new ResponsesWS(client, { headers: { 'x-request-id': 'ws-sdk-turns' } });
      const completed: Array<Extract<ResponsesServerEvent, { type: 'response.completed' }>> = [];
      const text: string[] = [];
      socket.on('event', (event) => {
        if (event.type === 'response.completed') completed.push(event);
        if (event.type === 'response.output_text.delta') text.push(event.delta);
      });
      socket.on('error', () => undefined);
      const turnDone = (count: number): Promise<void> =>
        new Promise((resolve) => {
          const check = (): void => (completed.length >= count ? resolve() : void setTimeout(check, 10));
          check();
        });
      try {
        socket.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'Say hello' });
        await turnDone(1);
        socket.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'Again', previous_response_id: completed[0]!.response.id });
        await turnDone(2);
      } finally {
        socket.close();
      }
      assert.equal(text.join(''), fake.replyText + fake.replyText);
      assert.equal(completed[1]!.response.previous_response_id, completed[0]!.response.id);
      const connection = await fake.websockets.connection(0);
      assert.equal(fake.websockets.connections.length, 1, 'both turns on one upstream socket');
      assert.equal(connection.handshake.headers.authorization, `Bearer ${UPSTREAM_KEY}`, 'the server key went upstream, never the app key');
      assert.deepEqual(connection.events('response.create').map((frame) => frame.input), ['Say hello', 'Again']);
      for (const id of ['ws-sdk-turns.1', 'ws-sdk-turns.2']) {
        const record = await usageRecord(gateway, id);
        assert.equal(record.key_name, 'agent');
        assert.equal(record.route, '/v1/responses');
        assert.equal(record.upstream, 'openai');
        assert.equal(record.model, 'gpt-4o-mini');
        assert.deepEqual([record.prompt_tokens, record.cached_tokens, record.completion_tokens, record.reasoning_tokens, record.total_tokens], [120, 64, 30, 12, 150]);
        assert.ok(Math.abs(record.cost_usd! - MINI_COST) < 1e-9, `cost ${record.cost_usd}`);
        assert.equal(record.usage_source, 'upstream');
      }
      assert.doesNotMatch(gateway.logText(), new RegExp(`${UPSTREAM_KEY}|${keys.agent}`));
    });

    it('answers a refused turn with an error event and keeps the socket: another model, another key’s response, bad JSON', async () => {
      const theirs = opened(await open(`${ws}/v1/responses`, { headers: { authorization: `Bearer ${keys.other}` } }));
      theirs.send({ type: 'response.create', model: 'gpt-4o', input: 'mine' });
      const created = await theirs.next('response.completed');
      const theirId = (created.response as Json).id as string;
      theirs.ws.close();

      const client = opened(await open(`${ws}/v1/responses`, { headers: { authorization: `Bearer ${keys.narrow}`, 'x-request-id': 'ws-refused' } }));
      assert.equal(client.headers['x-request-id'], 'ws-refused', 'the 101 names the request like every other answer');
      assert.match(String(client.headers['x-openai-api-overhead-ms']), /^\d+\.\d{3}$/);
      client.send({ type: 'response.create', model: 'gpt-4o', input: 'not my model' });
      const wrongModel = await client.next('error');
      assert.equal(wrongModel.status, 403);
      assert.equal((wrongModel.error as Json).code, 'model_not_allowed');
      client.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'their conversation', previous_response_id: theirId });
      assert.equal(((await client.next('error')).error as Json).code, 'object_not_found');
      client.send('{not json');
      assert.equal(((await client.next('error')).error as Json).code, 'invalid_json');
      client.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'fine' });
      await client.next('response.completed');
      client.ws.close();
      await client.closed;
      const upstreamSocket = fake.websockets.connections[1]!;
      assert.deepEqual(upstreamSocket.events('response.create').map((frame) => frame.input), ['fine'], 'refused turns never reached the upstream');
      const refusedRecord = await usageRecord(gateway, 'ws-refused.1');
      assert.equal(refusedRecord.error_code, 'model_not_allowed');
      assert.equal(refusedRecord.total_tokens, 0);
      assert.equal((await usageRecord(gateway, 'ws-refused.3')).total_tokens, 150);
    });

    it("puts the key's persona into each turn, as on HTTP", async () => {
      const client = opened(await open(`${ws}/v1/responses`, { headers: { authorization: `Bearer ${keys.persona}` } }));
      client.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'hi', instructions: 'Be brief.' });
      await client.next('response.completed');
      client.ws.close();
      const frame = (await fake.websockets.connection(0)).events('response.create')[0]!;
      assert.equal(frame.instructions, 'You are a pirate.\n\nBe brief.');
    });

    it('holds a token budget turn by turn: the turn past it is refused with an error event', async () => {
      const client = opened(await open(`${ws}/v1/responses`, { headers: { authorization: `Bearer ${keys.tight}` } }));
      client.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'one' });
      await client.next('response.completed');
      client.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'two' });
      await client.next('response.completed');
      client.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'three' });
      const refusal = await client.next('error');
      assert.equal((refusal.error as Json).code, 'budget_exceeded');
      assert.equal(client.ws.readyState, WebSocket.OPEN, 'a Responses socket stays usable');
      client.ws.close();
      assert.equal((await fake.websockets.connection(0)).events('response.create').length, 2);
    });

    it('refuses the upgrade at once with 426 for a path without a WebSocket, and 401 without a key', async () => {
      const chat = refused(await open(`${ws}/v1/chat/completions`, { headers: { authorization: `Bearer ${keys.agent}` } }));
      assert.equal(chat.status, 426);
      assert.match(chat.body, /upgrade_required/);
      assert.equal(refused(await open(`${ws}/v1/responses`)).status, 401);
      assert.equal(refused(await open(`${ws}/v1/responses`, { headers: { authorization: 'Bearer nope' } })).status, 401);
      assert.deepEqual(fake.websockets.handshakes, []);
    });

    it('closes the upstream socket when the client leaves mid-turn and charges the turn its estimate', async () => {
      fake.websockets.hangNextTurn();
      const client = opened(await open(`${ws}/v1/responses`, { headers: { authorization: `Bearer ${keys.agent}`, 'x-request-id': 'ws-abort' } }));
      client.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'take your time', max_output_tokens: 50 });
      const upstream = await fake.websockets.connection(0);
      await upstream.waitForFrame((frame) => frame.json?.type === 'response.create');
      client.ws.terminate();
      const closed = await upstream.closed;
      assert.equal(closed.code, 1001, 'a client gone without a close frame is "going away" upstream');
      const record = await usageRecord(gateway, 'ws-abort.1');
      assert.equal(record.status, 499);
      assert.equal(record.aborted, 1);
      assert.equal(record.usage_source, 'estimated');
      assert.equal(record.completion_tokens, 50, 'charged its max_output_tokens');
    });

    it('passes the upstream dropping mid-turn on to the client (1011) and records the cut turn', async () => {
      fake.websockets.dropNextTurn(2);
      const client = opened(await open(`${ws}/v1/responses`, { headers: { authorization: `Bearer ${keys.agent}`, 'x-request-id': 'ws-drop' } }));
      client.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'go' });
      const closed = await client.closed;
      assert.equal(closed.code, 1011);
      assert.equal(client.events.filter((event) => event.type === 'response.output_text.delta').length, 2, 'what came before the drop was relayed');
      const record = await usageRecord(gateway, 'ws-drop.1');
      assert.equal(record.status, 502);
      assert.equal(record.error_code, 'upstream_unreachable');
      assert.equal(record.usage_source, 'estimated');
    });

    it('passes close codes through both ways', async () => {
      fake.websockets.dropNextTurn(1, { code: 4000, reason: 'upstream says bye' });
      const first = opened(await open(`${ws}/v1/responses`, { headers: { authorization: `Bearer ${keys.agent}` } }));
      first.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'go' });
      assert.deepEqual(await first.closed, { code: 4000, reason: 'upstream says bye' });
      const second = opened(await open(`${ws}/v1/responses`, { headers: { authorization: `Bearer ${keys.agent}` } }));
      const upstream = await fake.websockets.connection(1);
      second.ws.close(4001, 'client says bye');
      assert.deepEqual(await upstream.closed, { code: 4001, reason: 'client says bye' });
    });

    it('serves 100 concurrent sockets and leaves nothing open behind them', async () => {
      const clients = await Promise.all(Array.from({ length: 100 }, async () => opened(await open(`${ws}/v1/responses`, { headers: { authorization: `Bearer ${keys.agent}` } }))));
      await Promise.all(
        clients.map(async (client, index) => {
          client.send({ type: 'response.create', model: 'gpt-4o-mini', input: `turn ${index}` });
          await client.next('response.completed', 15_000);
        }),
      );
      assert.equal(fake.websockets.open, 100);
      for (const client of clients) client.ws.close();
      await fake.websockets.allClosed(10_000);
      await Promise.all(clients.map((client) => client.closed));
      assert.equal(gateway.gateway.streams.size, 0, 'every relay unregistered');
    });

    it('runs Codex CLI over the WebSocket with an app key, metered under that key', async () => {
      const result = await runCodex({ baseUrl: `${gateway.url}/v1`, apiKey: keys.agent!, prompt: 'say hi', model: 'gpt-4o-mini', websockets: true });
      assert.equal(result.code, 0, result.stderr);
      assert.ok(result.stdout.includes(fake.replyText), result.stdout);
      assert.deepEqual(fake.requests, [], 'no HTTP fallback');
      const connection = await fake.websockets.connection(0);
      assert.equal(connection.handshake.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
      assert.match(String(connection.handshake.headers['openai-beta']), /^responses_websockets=/);
      const [warmup, turn] = connection.events('response.create');
      assert.equal(warmup?.generate, false);
      assert.equal(typeof turn?.previous_response_id, 'string');
      await gateway.gateway.writer.flush();
      const rows = await gateway.gateway.database.db.selectFrom('usage_records').selectAll().where('key_name', '=', 'agent').where('route', '=', '/v1/responses').where('total_tokens', '=', 150).execute();
      assert.ok(rows.length >= 1, 'the real turn was metered under the app key');
    });
  });

  describe('Realtime', () => {
    it("relays OpenAIRealtimeWS with an app key and meters response.done with audio tokens priced apart", async () => {
      const client = new OpenAI({ apiKey: keys.agent!, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
      const port = Number(new URL(gateway.url).port);
      // The SDK always dials wss://; a plain TCP connection reaches the plain-HTTP gateway.
      const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { createConnection: () => connect(port, '127.0.0.1'), headers: { 'x-request-id': 'rt-sdk' } } }, client);
      const events: RealtimeServerEvent[] = [];
      let created!: () => void;
      const sessionCreated = new Promise<void>((resolve) => (created = resolve));
      const done = new Promise<void>((resolve) =>
        rt.on('event', (event) => {
          events.push(event);
          if (event.type === 'session.created') created();
          if (event.type === 'response.done') resolve();
        }),
      );
      rt.on('error', () => undefined);
      try {
        await sessionCreated;
        rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'] } });
        rt.send({ type: 'response.create' });
        await done;
      } finally {
        rt.close();
      }
      assert.ok(events.some((event) => event.type === 'session.created'));
      const connection = await fake.websockets.connection(0);
      assert.equal(connection.handshake.query.get('model'), 'gpt-realtime');
      assert.equal(connection.handshake.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
      const record = await usageRecord(gateway, 'rt-sdk.1');
      assert.equal(record.route, '/v1/realtime');
      assert.equal(record.key_name, 'agent');
      assert.deepEqual([record.prompt_tokens, record.cached_tokens, record.completion_tokens, record.total_tokens], [60, 16, 35, 95]);
      // gpt-realtime: text 4 in / 0.4 cached / 16 out, audio 32 in / 64 out: 4 text + 40 audio + 16 cached in, 10 text + 25 audio out.
      const expected = (4 * 4 + 40 * 32 + 16 * 0.4 + 10 * 16 + 25 * 64) / 1e6;
      assert.ok(Math.abs(record.cost_usd! - expected) < 1e-9, `cost ${record.cost_usd}, expected ${expected}`);
    });

    it("takes a browser's key subprotocol (an app key), never echoes it, and never sends it upstream", async () => {
      const client = opened(await open(`${ws}/v1/realtime?model=gpt-realtime`, { protocols: ['realtime', `openai-insecure-api-key.${keys.agent}`] }));
      assert.equal(client.ws.protocol, 'realtime');
      await client.next('session.created');
      client.ws.close();
      const connection = await fake.websockets.connection(0);
      assert.equal(connection.handshake.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
      assert.doesNotMatch(String(connection.handshake.headers['sec-websocket-protocol']), /insecure-api-key/);
      assert.equal(refused(await open(`${ws}/v1/realtime?model=gpt-realtime`, { protocols: ['realtime', 'openai-insecure-api-key.not-a-key'] })).status, 401);
    });

    it('checks the model at the handshake and on session.update', async () => {
      const wrong = refused(await open(`${ws}/v1/realtime?model=gpt-realtime`, { headers: { authorization: `Bearer ${keys.narrow}` } }));
      assert.equal(wrong.status, 403);
      assert.match(wrong.body, /model_not_allowed/);
      const missing = refused(await open(`${ws}/v1/realtime`, { headers: { authorization: `Bearer ${keys.voice}` } }));
      assert.equal(missing.status, 400);
      const client = opened(await open(`${ws}/v1/realtime?model=gpt-realtime`, { headers: { authorization: `Bearer ${keys.agent}` } }));
      client.send({ type: 'session.update', event_id: 'evt_1', session: { type: 'realtime', model: 'gpt-4o-realtime-preview' } });
      const error = await client.next('error');
      assert.equal((error.error as Json).code, 'model_not_allowed');
      assert.equal((error.error as Json).event_id, 'evt_1');
      client.ws.close();
      const connection = await fake.websockets.connection(0);
      assert.deepEqual(connection.received.filter((frame) => frame.json?.type === 'session.update'), [], 'the refused update never reached the upstream');
      const persona = refused(await open(`${ws}/v1/realtime?model=gpt-realtime`, { headers: { authorization: `Bearer ${keys.persona}` } }));
      assert.equal(persona.status, 403);
      assert.match(persona.body, /endpoint_not_allowed/);
    });

    it('refuses a Realtime model no WebSocket upstream serves with 426', async () => {
      const answer = refused(await open(`${ws}/v1/realtime?model=llama-3-voice`, { headers: { authorization: `Bearer ${keys.agent}` } }));
      assert.equal(answer.status, 426);
      assert.deepEqual(compat.requests, []);
    });

    it('closes the session cleanly (1008) with an error event once the budget is used up', async () => {
      const client = opened(await open(`${ws}/v1/realtime?model=gpt-realtime`, { headers: { authorization: `Bearer ${keys.voice}` } }));
      client.send({ type: 'response.create' });
      await client.next('response.done');
      client.send({ type: 'response.create' });
      await client.next('response.done');
      client.send({ type: 'response.create' });
      const error = await client.next('error');
      assert.equal((error.error as Json).code, 'budget_exceeded');
      const closed = await client.closed;
      assert.equal(closed.code, 1008);
      const connection = await fake.websockets.connection(0);
      assert.equal(connection.events('response.create').length, 2);
    });
  });
});

describe('WebSocket limits and fallback', () => {
  let fake: FakeUpstream;
  let gateway: TestGateway;

  before(async () => {
    fake = await FakeUpstream.start({ websockets: true });
    gateway = await startTestGateway({ ACCESS_TOKEN: ACCESS, BASE_URL: fake.url, APIKEY: UPSTREAM_KEY, WEBSOCKET_IDLE_TIMEOUT: '0.6', WEBSOCKET_MAX_DURATION: '30', DRAIN_TIMEOUT: '5' });
  });
  after(async () => {
    await gateway.close();
    await fake.close();
  });

  it('closes a socket idle in both directions (1000) and its upstream with it', async () => {
    const client = opened(await open(`${gateway.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: `Bearer ${ACCESS}` } }));
    const upstream = await fake.websockets.connection(0);
    const closed = await client.closed;
    assert.equal(closed.code, 1000);
    assert.match(closed.reason, /idle/);
    await upstream.closed;
  });

  it('makes Codex fall back to HTTP at once when no upstream has a WebSocket', async () => {
    const compat = await FakeUpstream.start();
    const only = await startTestGateway({ ACCESS_TOKEN: ACCESS, UPSTREAMS: JSON.stringify([{ name: 'compat', type: 'openai-compatible', base_url: compat.url, api_keys: [COMPAT_KEY] }]) });
    try {
      const result = await runCodex({ baseUrl: `${only.url}/v1`, apiKey: ACCESS, prompt: 'say hi', model: 'gpt-4o-mini', websockets: true });
      assert.equal(result.code, 0, result.stderr);
      assert.ok(result.stdout.includes(compat.replyText));
      assert.ok(result.elapsedMs < 4_000, `fell back in ${result.elapsedMs} ms`);
      assert.deepEqual(compat.requests.map((request) => `${request.method} ${request.path}`), ['POST /v1/responses'], 'no handshake reached the provider');
    } finally {
      await only.close();
      await compat.close();
    }
  });

  it('closes open sockets with 1001 when the gateway shuts down', async () => {
    const client = opened(await open(`${gateway.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: `Bearer ${ACCESS}` } }));
    const closing = gateway.close();
    const closed = await client.closed;
    assert.equal(closed.code, 1001);
    await closing;
  });
});
