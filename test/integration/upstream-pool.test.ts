import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { loadConfig, upstreamsFromConfig, type PoolSettings, type UpstreamConfig } from '../../src/config/index.js';
import { GatewayError } from '../../src/errors/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { UpstreamPool, type PoolRequest, type PoolResponse } from '../../src/upstream/pool.js';
import { chatCompletion, FakeUpstream, openAiError, sendJson } from '../helpers/fake-upstream.js';
import { tempConfigDir } from '../helpers/temp-config.js';
import { TEST_TIMEOUTS, upstreamFixture } from '../helpers/upstream-fixture.js';

const SETTINGS: PoolSettings = { maxAttempts: 3, retryBaseDelayMs: 100, cooldownMs: 30_000, circuitErrorRatio: 0.5, circuitMinRequests: 10, circuitWindowMs: 30_000, circuitOpenMs: 30_000 };
const TIMEOUTS = TEST_TIMEOUTS;
const FOREVER = Number.POSITIVE_INFINITY;

const { fake, track } = upstreamFixture();

/** A base URL nothing listens on: a fake that was started and closed again. */
async function deadUrl(): Promise<string> {
  const closed = await FakeUpstream.start();
  await closed.close();
  return closed.url;
}

const keyOf = (name: string, index = 0): string => `sk-${name}-secret-key-${String(index).padStart(4, '0')}`;

function entry(name: string, baseUrl: string, overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { name, type: 'openai', baseUrl, apiKeys: [keyOf(name)], weight: 1, models: ['*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: true, websockets: true, anthropicVersion: undefined, ...overrides };
}

interface Harness {
  pool: UpstreamPool;
  /** Every log line so far, parsed. */
  logs: () => Array<Record<string, unknown>>;
  logText: () => string;
  /** Waits the pool asked for, in ms (the fake sleep returns at once and moves the clock). */
  waits: number[];
  clock: { now: number };
}

function harness(upstreams: UpstreamConfig[], options: { settings?: Partial<PoolSettings>; timeouts?: Partial<typeof TIMEOUTS>; random?: () => number } = {}): Harness {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
  const clock = { now: Date.parse('2026-03-01T12:00:00Z') };
  const waits: number[] = [];
  const pool = new UpstreamPool(upstreams, { ...SETTINGS, ...options.settings }, {
    logger,
    timeouts: { ...TIMEOUTS, ...options.timeouts },
    now: () => clock.now,
    sleep: async (ms) => {
      waits.push(ms);
      clock.now += ms;
    },
    // Random 0 makes both balancer draws the first eligible upstream: the order of the list decides.
    random: options.random ?? (() => 0),
  });
  track(pool);
  return { pool, waits, clock, logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>), logText: () => lines.join('') };
}

function chat(model: string | undefined, overrides: Partial<PoolRequest> = {}): PoolRequest {
  return {
    model,
    method: 'POST',
    path: '/chat/completions',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    signal: new AbortController().signal,
    ...overrides,
  };
}

/** Sends and reads the whole body, as a route relaying it would. */
async function send(pool: UpstreamPool, request: PoolRequest = chat('gpt-4o-mini')): Promise<PoolResponse & { status: number; text: string }> {
  const answer = await pool.send(request);
  const text = await answer.response.body.text();
  return { ...answer, status: answer.response.statusCode, text };
}

const bearer = (key: string): string => `Bearer ${key}`;
const authorizations = (upstream: FakeUpstream): Array<string | undefined> => upstream.requests.map((request) => request.headers.authorization);

describe('upstream pool: failover', () => {
  it('moves on from a refused connection to the next upstream within one request', async () => {
    const live = await fake();
    const { pool, logs } = harness([entry('dead', await deadUrl()), entry('live', live.url)]);
    const answer = await send(pool);
    assert.equal(answer.status, 200);
    assert.equal(answer.upstream, 'live');
    assert.equal(answer.attempts, 2);
    assert.deepEqual(authorizations(live), [bearer(keyOf('live'))]);
    const failed = logs().find((line) => line.upstream === 'dead' && line.attempt === 1);
    assert.equal(failed?.error, 'ECONNREFUSED');
    assert.ok(logs().some((line) => line.upstream === 'live' && line.attempt === 2 && line.status === 200));
  });

  it('moves on from a connection reset before any answer', async () => {
    const resetting = await fake();
    const live = await fake();
    resetting.script((_request, _response, socket) => void socket.destroy());
    const { pool } = harness([entry('reset', resetting.url), entry('live', live.url)]);
    const answer = await send(pool);
    assert.deepEqual([answer.status, answer.upstream, answer.attempts], [200, 'live', 2]);
    assert.equal(resetting.requests.length, 1);
    assert.equal(live.requests.length, 1);
  });

  it('moves on from an upstream that never answers once the first-byte timeout passes', async () => {
    const hanging = await fake();
    const live = await fake();
    hanging.script(() => undefined);
    const { pool, logs } = harness([entry('hang', hanging.url), entry('live', live.url)], { timeouts: { firstByteTimeoutMs: 300 } });
    const started = Date.now();
    const answer = await send(pool);
    const elapsed = Date.now() - started;
    assert.deepEqual([answer.status, answer.upstream, answer.attempts], [200, 'live', 2]);
    assert.ok(elapsed >= 290 && elapsed < 3_000, `took ${elapsed} ms`);
    assert.equal(logs().find((line) => line.upstream === 'hang')?.error, 'UND_ERR_HEADERS_TIMEOUT');
  });

  it('serves 50 concurrent requests without a failure when one of three upstreams is down', async () => {
    const a = await fake();
    const c = await fake();
    const { pool } = harness([entry('a', a.url), entry('down', await deadUrl()), entry('c', c.url)], { random: Math.random });
    const answers = await Promise.all(Array.from({ length: 50 }, () => send(pool)));
    assert.ok(answers.every((answer) => answer.status === 200));
    assert.ok(answers.every((answer) => answer.upstream !== 'down' && answer.attempts <= 2));
    assert.equal(a.requests.length + c.requests.length, 50);
    assert.ok(answers.some((answer) => answer.attempts === 2), 'some requests tried the dead upstream first');
  });

  it('goes to another upstream at once after a 500, without waiting', async () => {
    const failing = await fake();
    const live = await fake();
    failing.failWith(500, openAiError(500, 'The server had an error', 'server_error', null));
    const { pool, waits } = harness([entry('failing', failing.url), entry('live', live.url)]);
    const answer = await send(pool);
    assert.deepEqual([answer.status, answer.upstream, answer.attempts], [200, 'live', 2]);
    assert.deepEqual(waits, []);
  });
});

describe('upstream pool: retries on one upstream', () => {
  it('retries a 500 on the same upstream with exponential backoff (base × 2^n × jitter)', async () => {
    const only = await fake();
    only.failWith(500, openAiError(500, 'oops', 'server_error', null), {}, 2);
    const { pool, waits } = harness([entry('only', only.url)]);
    const answer = await send(pool);
    assert.deepEqual([answer.status, answer.attempts], [200, 3]);
    // random() = 0 gives the low end of the jitter: 100 × 2^n × 0.5.
    assert.deepEqual(waits, [50, 100]);
  });

  it('returns the last 500 as is, body unread, when the attempts run out', async () => {
    const only = await fake();
    only.failWith(503, openAiError(503, 'overloaded', 'server_error', null), { 'x-marker': 'last' }, 3);
    const { pool } = harness([entry('only', only.url)]);
    const answer = await send(pool);
    assert.deepEqual([answer.status, answer.attempts], [503, 3]);
    assert.equal(answer.response.headers['x-marker'], 'last');
    assert.match(answer.text, /overloaded/);
    assert.equal(only.requests.length, 3);
  });

  it('throws the mapped error when the last attempt got no answer: refused is 502, silence is 504', async () => {
    const { pool, waits } = harness([entry('gone', await deadUrl())]);
    await assert.rejects(pool.send(chat('gpt-4o-mini')), (error: GatewayError) => {
      assert.deepEqual([error.code, error.status, error.message], ['upstream_unreachable', 502, 'Upstream "gone" is unreachable: connection refused.']);
      return true;
    });
    assert.deepEqual(waits, [50, 100], 'three attempts, backing off between them');

    const silent = await fake();
    silent.script(() => undefined, FOREVER);
    // One attempt: undici checks first-byte timeouts on a coarse timer, so each costs up to a second.
    const slow = harness([entry('silent', silent.url)], { settings: { maxAttempts: 1 }, timeouts: { firstByteTimeoutMs: 200 } });
    await assert.rejects(slow.pool.send(chat('gpt-4o-mini')), (error: GatewayError) => error.code === 'upstream_timeout' && error.status === 504);
    assert.equal(silent.requests.length, 1);
  });

  it('passes a 400 through at once (not retried)', async () => {
    const only = await fake();
    only.failWith(400, openAiError(400, 'Unsupported parameter', 'invalid_request_error', 'unsupported_parameter'));
    const { pool } = harness([entry('only', only.url)]);
    const answer = await send(pool);
    assert.deepEqual([answer.status, answer.attempts], [400, 1]);
    assert.match(answer.text, /unsupported_parameter/);
  });

  it('consumes the bodies of retried answers, so their connections are reused', async () => {
    const only = await fake();
    const { pool } = harness([entry('only', only.url)], { settings: { retryBaseDelayMs: 0, circuitMinRequests: 1_000 } });
    for (let i = 0; i < 10; i++) {
      only.failWith(500, openAiError(500, 'x'.repeat(300_000), 'server_error', null), {}, 2);
      assert.equal((await send(pool)).attempts, 3);
    }
    assert.ok(only.openConnections <= 2, `${only.openConnections} sockets open after 30 attempts`);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pool.state()[0]!.inFlight, 0);
  });

  it('does not retry a streamed (Readable) body: one attempt only', async () => {
    const failing = await fake();
    const live = await fake();
    failing.failWith(500, openAiError(500, 'oops', 'server_error', null));
    const { pool } = harness([entry('failing', failing.url), entry('live', live.url)]);
    const body = Readable.from([Buffer.from('{"model":"whisper-1"}')]);
    const answer = await send(pool, chat('whisper-1', { body, path: '/audio/transcriptions' }));
    assert.deepEqual([answer.status, answer.upstream, answer.attempts], [500, 'failing', 1]);
    assert.equal(live.requests.length, 0);
  });

  it('does not retry once the caller has gone', async () => {
    const hanging = await fake();
    const live = await fake();
    hanging.script(() => undefined);
    const { pool } = harness([entry('hang', hanging.url), entry('live', live.url)]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(pool.send(chat('gpt-4o-mini', { signal: controller.signal })), GatewayError);
    assert.equal(live.requests.length, 0);
    assert.equal(pool.state()[0]!.circuit, 'closed');
    assert.equal(pool.state()[0]!.errors, 0, 'a cancelled request is no verdict on the upstream');
  });
});

describe('upstream pool: keys', () => {
  const rateLimited = openAiError(429, 'Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM).', 'requests', 'rate_limit_exceeded');
  const noQuota = openAiError(429, 'You exceeded your current quota, please check your plan and billing details.', 'insufficient_quota', 'insufficient_quota');

  it('rests a key answering 429 for its Retry-After, serves the request with the next key at once, and heals', async () => {
    const upstream = await fake();
    upstream.failWith(429, rateLimited, { 'retry-after': '20' });
    const keys = [keyOf('rl', 0), keyOf('rl', 1)];
    const { pool, waits, clock } = harness([entry('rl', upstream.url, { apiKeys: keys })]);
    const first = await send(pool);
    assert.deepEqual([first.status, first.attempts], [200, 2]);
    assert.deepEqual(authorizations(upstream), [bearer(keys[0]!), bearer(keys[1]!)]);
    assert.deepEqual(waits, [], 'another key goes at once');
    const cooling = pool.state()[0]!.keys[0]!;
    assert.equal(cooling.status, 'cooling');
    assert.equal(cooling.coolingUntil, new Date(clock.now + 20_000).toISOString());

    upstream.reset();
    for (let i = 0; i < 3; i++) assert.equal((await send(pool)).attempts, 1);
    assert.deepEqual(authorizations(upstream), Array(3).fill(bearer(keys[1]!)), 'the resting key is skipped');

    clock.now += 20_000;
    assert.equal(pool.state()[0]!.keys[0]!.status, 'healthy');
    upstream.reset();
    for (let i = 0; i < 4; i++) await send(pool);
    assert.deepEqual(new Set(authorizations(upstream)), new Set(keys.map(bearer)), 'both keys serve again, in turn');
  });

  it('uses the cooldown setting when a 429 carries no Retry-After', async () => {
    const upstream = await fake();
    upstream.failWith(429, rateLimited);
    const { pool, clock } = harness([entry('rl', upstream.url, { apiKeys: [keyOf('rl', 0), keyOf('rl', 1)] })], { settings: { cooldownMs: 45_000 } });
    await send(pool);
    assert.equal(pool.state()[0]!.keys[0]!.coolingUntil, new Date(clock.now + 45_000).toISOString());
  });

  it('waits out a short Retry-After on the only key, then retries it', async () => {
    const upstream = await fake();
    upstream.failWith(429, rateLimited, { 'retry-after-ms': '1500' });
    const { pool, waits } = harness([entry('one', upstream.url)]);
    const answer = await send(pool);
    assert.deepEqual([answer.status, answer.attempts], [200, 2]);
    assert.deepEqual(waits, [1500]);
  });

  it('returns the 429, body intact, when the only key must rest longer than 10 s', async () => {
    const upstream = await fake();
    upstream.failWith(429, rateLimited, { 'retry-after': '60' });
    const { pool, waits } = harness([entry('one', upstream.url)]);
    const answer = await send(pool);
    assert.deepEqual([answer.status, answer.attempts], [429, 1]);
    assert.equal(answer.response.headers['retry-after'], '60');
    assert.deepEqual(JSON.parse(answer.text), rateLimited);
    assert.deepEqual(waits, []);
    await assert.rejects(pool.send(chat('gpt-4o-mini')), (error: GatewayError) => error.code === 'rate_limit_exceeded' && error.headers?.['retry-after'] === '60' && /one: keys rate-limited/.test(error.message));
  });

  for (const [what, status, body, reason] of [
    ['401 (bad key)', 401, openAiError(401, `Incorrect API key provided: ${keyOf('bad', 0)}`, 'invalid_request_error', 'invalid_api_key'), 'HTTP 401'],
    ['429 insufficient_quota', 429, noQuota, 'HTTP 429 insufficient_quota'],
  ] as const) {
    it(`disables a key answering ${what} until reload, serves with the next key, and never shows the key`, async () => {
      const upstream = await fake();
      const bad = keyOf('bad', 0);
      const good = keyOf('bad', 1);
      upstream.script((request, response) => {
        if (request.headers.authorization === bearer(bad)) return sendJson(response, status, body);
        return sendJson(response, 200, chatCompletion('gpt-4o-mini', 'ok'));
      }, FOREVER);
      const { pool, logs, logText, waits } = harness([entry('keys', upstream.url, { apiKeys: [bad, good] })]);
      const first = await send(pool);
      assert.deepEqual([first.status, first.attempts], [200, 2]);
      assert.deepEqual(waits, []);
      for (let i = 0; i < 10; i++) assert.equal((await send(pool)).attempts, 1);
      assert.deepEqual(authorizations(upstream), [bearer(bad), ...Array(11).fill(bearer(good))]);

      const [disabled, healthy] = pool.state()[0]!.keys;
      assert.equal(disabled!.status, 'disabled');
      assert.equal(disabled!.disabledReason, reason);
      assert.equal(disabled!.hint, '…0000');
      assert.equal(healthy!.status, 'healthy');
      const loud = logs().find((line) => line.level === 50);
      assert.ok(loud, 'an error-level line');
      assert.deepEqual([loud.upstream, loud.keyIndex, loud.keyHint], ['keys', 0, '…0000']);
      for (const text of [JSON.stringify(pool.state()), logText()]) {
        assert.ok(!text.includes(bad) && !text.includes(good), 'no key in state() or the log');
      }
    });
  }

  it('returns the refusal when no other key is left, then says every key is disabled', async () => {
    const upstream = await fake();
    upstream.failWith(401, openAiError(401, 'Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'));
    const { pool } = harness([entry('solo', upstream.url)]);
    const answer = await send(pool);
    assert.deepEqual([answer.status, answer.attempts], [401, 1]);
    await assert.rejects(pool.send(chat('gpt-4o-mini')), (error: GatewayError) => error.code === 'upstream_unreachable' && error.status === 502 && /solo: every key disabled/.test(error.message));
    assert.equal(upstream.requests.length, 1);
  });

  it('sends no Authorization to a keyless openai-compatible upstream, and the entry headers to every one', async () => {
    const local = await fake();
    const { pool } = harness([entry('ollama', local.url, { type: 'openai-compatible', apiKeys: [], headers: { 'x-title': 'gateway' } })]);
    await send(pool);
    assert.equal(local.last().headers.authorization, undefined);
    assert.equal(local.last().headers['x-title'], 'gateway');
    assert.equal(pool.state()[0]!.keys[0]!.hint, 'none');
  });

  it('builds the seed default upstream from api_key/base_url and takes its keys in turn', async () => {
    const upstream = await fake();
    const config = loadConfig({ env: { APIKEY: 'sk-seed-key-aaaa0001|sk-seed-key-bbbb0002', BASE_URL: upstream.url }, cwd: tempConfigDir(undefined) });
    const { pool } = harness(upstreamsFromConfig(config));
    const answers = [await send(pool), await send(pool)];
    assert.deepEqual(answers.map((answer) => answer.upstream), ['default', 'default']);
    assert.deepEqual(authorizations(upstream), [bearer('sk-seed-key-aaaa0001'), bearer('sk-seed-key-bbbb0002')]);
    assert.deepEqual(pool.secrets(), ['sk-seed-key-aaaa0001', 'sk-seed-key-bbbb0002']);
  });
});

describe('upstream pool: balancing', () => {
  it('splits 1,000 requests over weights 1:3 as 25 % / 75 % (±5 points)', async () => {
    const light = await fake();
    const heavy = await fake();
    const { pool } = harness([entry('light', light.url, { weight: 1 }), entry('heavy', heavy.url, { weight: 3 })], { random: Math.random });
    const served: Record<string, number> = { light: 0, heavy: 0 };
    for (let batch = 0; batch < 100; batch++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => send(pool)));
      for (const answer of answers) served[answer.upstream]! += 1;
    }
    const share = served.light! / 1_000;
    assert.ok(Math.abs(share - 0.25) <= 0.05, `light served ${served.light} of 1000`);
    assert.equal(light.requests.length + heavy.requests.length, 1_000);
    // A request stays in flight until its body closes, which follows the last byte by a tick.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(pool.state().map((upstream) => upstream.inFlight), [0, 0]);
  });
});

describe('upstream pool: circuit breaker', () => {
  it('opens after too many failures, keeps traffic away, then one half-open probe closes it', async () => {
    const flaky = await fake();
    const steady = await fake();
    flaky.failWith(500, openAiError(500, 'down', 'server_error', null), {}, FOREVER);
    const { pool, clock, logs } = harness([entry('flaky', flaky.url), entry('steady', steady.url)], { settings: { circuitMinRequests: 4, circuitErrorRatio: 0.5, circuitOpenMs: 30_000 } });

    for (let i = 0; i < 4; i++) assert.deepEqual(pick(await send(pool)), ['steady', 2]);
    const opened = pool.state()[0]!;
    assert.equal(opened.circuit, 'open');
    assert.equal(opened.circuitOpenUntil, new Date(clock.now + 30_000).toISOString());
    assert.ok(logs().some((line) => line.level === 40 && line.upstream === 'flaky' && /circuit opened/.test(String(line.msg))));

    for (let i = 0; i < 5; i++) assert.deepEqual(pick(await send(pool)), ['steady', 1]);
    assert.equal(flaky.requests.length, 4, 'nothing is sent to an open circuit');

    clock.now += 30_000;
    assert.equal(pool.state()[0]!.circuit, 'half-open');
    flaky.reset();
    // The probe is slow; a request arriving meanwhile goes elsewhere (one probe at a time).
    flaky.script(async (_request, response) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      sendJson(response, 200, chatCompletion('gpt-4o-mini', 'back'));
    });
    const probe = send(pool);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(pick(await send(pool)), ['steady', 1]);
    assert.deepEqual(pick(await probe), ['flaky', 1]);
    assert.equal(pool.state()[0]!.circuit, 'closed');
    assert.deepEqual(pick(await send(pool)), ['flaky', 1]);
  });

  it('re-opens when the half-open probe fails', async () => {
    const flaky = await fake();
    const steady = await fake();
    flaky.failWith(502, 'Bad gateway', {}, FOREVER);
    const { pool, clock } = harness([entry('flaky', flaky.url), entry('steady', steady.url)], { settings: { circuitMinRequests: 2, circuitOpenMs: 10_000 } });
    for (let i = 0; i < 2; i++) await send(pool);
    assert.equal(pool.state()[0]!.circuit, 'open');
    clock.now += 10_000;
    assert.deepEqual(pick(await send(pool)), ['steady', 2], 'the probe failed over');
    const state = pool.state()[0]!;
    assert.equal(state.circuit, 'open');
    assert.equal(state.circuitOpenUntil, new Date(clock.now + 10_000).toISOString());
    assert.equal(flaky.requests.length, 3);
  });

  function pick(answer: PoolResponse): [string, number] {
    return [answer.upstream, answer.attempts];
  }
});

describe('upstream pool: routing and Azure', () => {
  it('answers model_not_found for a model no upstream serves, without contacting any', async () => {
    const chatOnly = await fake();
    const embeddings = await fake();
    const { pool } = harness([entry('chat', chatOnly.url, { models: ['gpt-4o', 'gpt-4o-*', 'o3*'] }), entry('emb', embeddings.url, { models: ['text-embedding-3-small'] })]);
    await assert.rejects(pool.send(chat('claude-3-opus')), (error: GatewayError) => {
      assert.equal(error.code, 'model_not_found');
      assert.equal(error.status, 404);
      assert.equal(error.message, 'The model `claude-3-opus` is not served by this gateway.');
      return true;
    });
    assert.equal(chatOnly.requests.length + embeddings.requests.length, 0);
    assert.equal((await send(pool, chat('o3-mini'))).upstream, 'chat');
    assert.equal((await send(pool, chat('text-embedding-3-small', { path: '/embeddings' }))).upstream, 'emb');
    assert.ok(pool.serves('gpt-4o-mini') && !pool.serves('gpt-4'));
    assert.deepEqual(pool.configuredModels(), ['gpt-4o', 'text-embedding-3-small']);
  });

  it('sends to any upstream when the request names no model', async () => {
    const a = await fake();
    const { pool } = harness([entry('a', a.url, { models: ['gpt-4o'] })]);
    const answer = await send(pool, chat(undefined, { method: 'GET', path: '/models', body: null, headers: {} }));
    assert.deepEqual([answer.status, answer.upstream], [200, 'a']);
  });

  it('speaks Azure: deployment path, api-version merged into the query, api-key header', async () => {
    const azure = await fake();
    azure.script((_request, response) => sendJson(response, 200, chatCompletion('gpt-4o', 'from azure')), FOREVER);
    const key = 'azure-key-0123456789abcdef';
    const { pool } = harness([
      entry('azure', `${azure.origin}/`, { type: 'azure', apiKeys: [key], apiVersion: '2024-10-21', deployments: { 'gpt-4o': 'my-gpt4o', 'text-embedding-3-small': 'emb' }, headers: { 'x-ms-client': 'gw' } }),
    ]);

    const answer = await send(pool, chat('gpt-4o', { path: '/chat/completions?trace=1&api-version=1999-01-01' }));
    assert.deepEqual([answer.status, answer.upstream], [200, 'azure']);
    const sent = azure.last();
    assert.equal(sent.path, '/openai/deployments/my-gpt4o/chat/completions');
    const query = new URL(sent.url, 'http://x').searchParams;
    assert.equal(query.get('api-version'), '2024-10-21');
    assert.equal(query.get('trace'), '1');
    assert.equal(sent.headers['api-key'], key);
    assert.equal(sent.headers.authorization, undefined);
    assert.equal(sent.headers['x-ms-client'], 'gw');

    await send(pool, chat('text-embedding-3-small', { path: '/embeddings' }));
    assert.equal(azure.last().url, '/openai/deployments/emb/embeddings?api-version=2024-10-21');
    await send(pool, chat(undefined, { method: 'GET', path: '/files?purpose=batch', body: null }));
    assert.equal(azure.last().url, '/openai/files?purpose=batch&api-version=2024-10-21');

    await assert.rejects(pool.send(chat('gpt-4o-mini')), (error: GatewayError) => error.code === 'model_not_found');
    await assert.rejects(pool.send(chat(undefined, { path: '/audio/transcriptions' })), (error: GatewayError) => error.code === 'model_not_found' && /without knowing the model/.test(error.message));
    assert.deepEqual(pool.configuredModels(), ['gpt-4o', 'text-embedding-3-small']);
    assert.equal(azure.requests.length, 3);
  });

  it('tells the caller whether the gateway may add include_usage for a model', async () => {
    const a = await fake();
    const b = await fake();
    const { pool } = harness([entry('openai', a.url, { models: ['gpt-*'] }), entry('strict', b.url, { models: ['glm-*', 'gpt-4o'], includeUsage: false })]);
    assert.equal(pool.acceptsIncludeUsage('gpt-4o-mini'), true);
    assert.equal(pool.acceptsIncludeUsage('gpt-4o'), false, 'one of its upstreams rejects it');
    assert.equal(pool.acceptsIncludeUsage('glm-4'), false);
    assert.equal((await send(pool, chat('glm-4'))).includeUsage, false);
  });
});
