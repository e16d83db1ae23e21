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
import type { ResponsesUsage } from '../helpers/fake-sockets.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';

/**
 * The WebSocket fakes (test/helpers/fake-sockets.ts) are only worth something if real clients
 * accept them: the official SDK's Responses WebSocket and Realtime clients and Codex CLI, all
 * pointed straight at the fake, no gateway. The Codex cases also pin down the client behaviour
 * the gateway's relay relies on (what it sends, and how fast it falls back to HTTP).
 */

const KEY = 'sk-fake-sockets-test';
const USAGE: ResponsesUsage = { input_tokens: 120, input_tokens_details: { cached_tokens: 64 }, output_tokens: 30, output_tokens_details: { reasoning_tokens: 12 }, total_tokens: 150 };

/** Every event a client received, and a way to wait for the next one of a type. */
function collect<E extends { type: string }>(subscribe: (listener: (event: E) => void) => void): { events: E[]; next(type: string, timeoutMs?: number): Promise<E> } {
  const events: E[] = [];
  const waiters: Array<{ type: string; from: number; resolve: (event: E) => void }> = [];
  subscribe((event) => {
    events.push(event);
    for (const waiter of [...waiters]) {
      if (event.type !== waiter.type) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  });
  return {
    events,
    next: (type, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${type} event within ${timeoutMs} ms; got ${events.map((event) => event.type).join(', ')}`)), timeoutMs);
        waiters.push({ type, from: events.length, resolve: (event) => (clearTimeout(timer), resolve(event)) });
      }),
  };
}

describe('fake WebSocket upstream with real clients', () => {
  let fake: FakeUpstream;
  let client: OpenAI;

  before(async () => {
    fake = await FakeUpstream.start({ websockets: true });
    client = new OpenAI({ apiKey: KEY, baseURL: fake.url, maxRetries: 0 });
  });
  after(() => fake.close());
  beforeEach(() => {
    fake.reset();
    fake.objects.responseUsage = { ...USAGE };
  });

  it("answers the SDK's Responses WebSocket client with deltas and usage, and chains a turn by previous_response_id", async () => {
    const ws = new ResponsesWS(client);
    const received = collect<ResponsesServerEvent>((listener) => ws.on('event', listener));
    ws.on('error', () => undefined);
    try {
      ws.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'Say hello' });
      const first = (await received.next('response.completed')) as Extract<ResponsesServerEvent, { type: 'response.completed' }>;
      const deltas = received.events.filter((event) => event.type === 'response.output_text.delta').map((event) => (event as { delta: string }).delta);
      assert.equal(deltas.join(''), fake.replyText);
      assert.ok(deltas.length > 1, 'the text arrives in several deltas');
      assert.deepEqual(received.events.slice(0, 4).map((event) => event.type), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
      assert.deepEqual(first.response.usage, USAGE);

      ws.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'Again', previous_response_id: first.response.id });
      const second = (await received.next('response.completed')) as Extract<ResponsesServerEvent, { type: 'response.completed' }>;
      assert.equal(second.response.previous_response_id, first.response.id);
      assert.notEqual(second.response.id, first.response.id);

      const connection = await fake.websockets.connection(0);
      assert.equal(fake.websockets.connections.length, 1, 'both turns on one socket');
      assert.equal(connection.handshake.path, '/v1/responses');
      assert.equal(connection.handshake.headers.authorization, `Bearer ${KEY}`);
      assert.equal(connection.account, KEY);
      assert.deepEqual(connection.events('response.create').map((frame) => frame.input), ['Say hello', 'Again']);
    } finally {
      ws.close();
    }
    await fake.websockets.allClosed();
  });

  it('answers an unknown previous_response_id, an unknown model, bad JSON and an unknown event with an error event and keeps the socket', async () => {
    const ws = new ResponsesWS(client);
    const received = collect<ResponsesServerEvent>((listener) => ws.on('event', listener));
    const errors: Array<{ code: string | null; type: string }> = [];
    ws.on('error', (error) => errors.push((error.error as { error: { code: string | null; type: string } } | undefined)?.error ?? { code: 'client-side', type: error.message }));
    try {
      ws.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'x', previous_response_id: 'resp_unknown' });
      await received.next('error');
      ws.send({ type: 'response.create', model: 'no-such-model', input: 'x' });
      await received.next('error');
      ws.sendRaw('{not json');
      await received.next('error');
      ws.sendRaw(JSON.stringify({ type: 'response.nonsense' }));
      await received.next('error');
      assert.deepEqual(errors.map((error) => error.code), ['previous_response_not_found', 'model_not_found', 'invalid_json', 'invalid_value']);
      assert.ok(errors.every((error) => error.type === 'invalid_request_error'));
      ws.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'still there?' });
      await received.next('response.completed');
      assert.equal(fake.websockets.connections.length, 1);
    } finally {
      ws.close();
    }
  });

  it('plays a Realtime session for OpenAIRealtimeWS: session.update, a response with text deltas and usage, audio accepted silently', async () => {
    // The SDK always dials wss:// (it rewrites the scheme); a plain TCP connection lets it reach the plain-HTTP fake.
    const port = Number(new URL(fake.url).port);
    const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { createConnection: () => connect(port, '127.0.0.1') } }, client);
    assert.equal(rt.url.protocol, 'wss:');
    const received = collect<RealtimeServerEvent>((listener) => rt.on('event', listener));
    const errors: Error[] = [];
    rt.on('error', (error) => errors.push(error));
    try {
      const created = (await received.next('session.created')) as Extract<RealtimeServerEvent, { type: 'session.created' }>;
      assert.equal((created.session as { model?: string }).model, 'gpt-realtime');
      rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'], instructions: 'Be brief.' } });
      const updated = (await received.next('session.updated')) as Extract<RealtimeServerEvent, { type: 'session.updated' }>;
      assert.deepEqual((updated.session as { output_modalities?: string[] }).output_modalities, ['text']);
      rt.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(480).toString('base64') });
      rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hi' }] } });
      await received.next('conversation.item.created');
      rt.send({ type: 'response.create' });
      const done = (await received.next('response.done')) as Extract<RealtimeServerEvent, { type: 'response.done' }>;
      assert.deepEqual(done.response.usage, fake.websockets.realtimeUsage);
      const text = received.events.filter((event) => event.type === 'response.output_text.delta').map((event) => (event as { delta: string }).delta).join('');
      assert.equal(text, fake.replyText);
      assert.deepEqual(errors, []);

      const connection = await fake.websockets.connection(0);
      assert.equal(connection.handshake.path, '/v1/realtime');
      assert.equal(connection.handshake.query.get('model'), 'gpt-realtime');
      assert.equal(connection.account, KEY);
      assert.deepEqual(connection.received.map((frame) => frame.json?.type), ['session.update', 'input_audio_buffer.append', 'conversation.item.create', 'response.create']);
      assert.ok(!connection.sent.some((event) => String(event.type).startsWith('input_audio_buffer')), 'audio is accepted without an answer');
      assert.ok((await connection.ping()) >= connection.handshake.receivedAt, 'the client answered a ping');
      assert.equal(connection.pongs.length, 1);
    } finally {
      rt.close();
    }
  });

  it('misbehaves on demand: a refused handshake, a turn dropped with a close code, a hang, slow frames, and counts open sockets', async () => {
    fake.websockets.refuseNext(401);
    const refused = await new Promise<number>((resolve) => new WebSocket(`${fake.origin.replace('http', 'ws')}/v1/responses`).on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0)).on('error', () => undefined));
    assert.equal(refused, 401);
    assert.deepEqual(fake.websockets.handshakes.map((handshake) => handshake.status), [401]);

    fake.websockets.dropNextTurn(2, { code: 4000, reason: 'dropped by the fake' });
    const ws = new ResponsesWS(client);
    const received = collect<ResponsesServerEvent>((listener) => ws.on('event', listener));
    ws.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'x' });
    assert.equal(await closed, 4000);
    assert.equal(received.events.filter((event) => event.type === 'response.output_text.delta').length, 2);
    assert.ok(!received.events.some((event) => event.type === 'response.completed'));

    fake.websockets.hangNextTurn();
    const second = new ResponsesWS(client);
    const answers = collect<ResponsesServerEvent>((listener) => second.on('event', listener));
    second.on('error', () => undefined);
    second.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'hung' });
    const connection = await fake.websockets.connection(1);
    await connection.waitForFrame((frame) => frame.json?.input === 'hung');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(answers.events, [], 'a hung turn gets nothing');
    assert.equal(fake.websockets.open, 1);
    fake.websockets.delayMs = 10;
    const started = Date.now();
    second.send({ type: 'response.create', model: 'gpt-4o-mini', input: 'after the hang' });
    await answers.next('response.completed');
    fake.websockets.delayMs = 0;
    assert.ok(Date.now() - started >= 10 * (answers.events.length - 1), 'frames were spaced by delayMs');
    second.close();
    await fake.websockets.allClosed();
    assert.equal(fake.websockets.open, 0);
  });

  it('serves Codex CLI over HTTP when its provider has supports_websockets = false', async () => {
    const result = await runCodex({ baseUrl: fake.url, apiKey: KEY, prompt: 'say hi', websockets: false });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(fake.replyText.replace('.', '\\.')));
    assert.deepEqual(fake.requests.map((request) => `${request.method} ${request.path}`), ['POST /v1/responses']);
    assert.equal(fake.last().headers.authorization, `Bearer ${KEY}`);
    assert.equal(fake.last().json?.stream, true);
    assert.deepEqual(fake.websockets.handshakes, []);
  });

  it('serves Codex CLI over WebSocket: OpenAI-Beta handshake, a generate:false warm-up, then the turn chained to it on the same socket', async () => {
    const result = await runCodex({ baseUrl: fake.url, apiKey: KEY, prompt: 'say hi', websockets: true });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(fake.replyText.replace('.', '\\.')));
    assert.deepEqual(fake.requests, [], 'no HTTP request: everything went over the socket');
    assert.equal(fake.websockets.connections.length, 1);
    const connection = fake.websockets.connections[0]!;
    assert.match(String(connection.handshake.headers['openai-beta']), /^responses_websockets=\d{4}-\d{2}-\d{2}$/);
    assert.equal(connection.handshake.headers.authorization, `Bearer ${KEY}`);
    const [warmup, turn, ...rest] = connection.events('response.create');
    assert.deepEqual(rest, []);
    assert.equal(warmup?.generate, false);
    assert.equal(turn?.generate, undefined);
    const warmupId = connection.sent.find((event) => event.type === 'response.completed')?.response as { id: string } | undefined;
    assert.equal(turn?.previous_response_id, warmupId?.id);
    assert.equal(turn?.store, false);
    await fake.websockets.allClosed();
  });

  it('makes Codex CLI fall back to HTTP at once when the upgrade is refused with 426', async () => {
    fake.websockets.refuseNext(426, { times: 10 });
    const result = await runCodex({ baseUrl: fake.url, apiKey: KEY, prompt: 'say hi', websockets: true });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(fake.replyText.replace('.', '\\.')));
    assert.deepEqual(fake.websockets.handshakes.map((handshake) => handshake.status), [426], 'one attempt, no retries');
    assert.deepEqual(fake.requests.map((request) => `${request.method} ${request.path}`), ['POST /v1/responses']);
    // Other refusals (401, 404, 5xx, a 200 that is no upgrade) cost ~6.5 s of retries first.
    assert.ok(result.elapsedMs < 3_000, `fell back in ${result.elapsedMs} ms`);
  });
});
