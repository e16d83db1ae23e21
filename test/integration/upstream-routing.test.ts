import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { PoolSettings, UpstreamConfig } from '../../src/config/index.js';
import type { GatewayError } from '../../src/errors/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { UpstreamPool, type PoolRequest } from '../../src/upstream/pool.js';
import { openAiError } from '../helpers/fake-upstream.js';
import { TEST_TIMEOUTS, upstreamFixture } from '../helpers/upstream-fixture.js';
import { seededRandom as seeded } from '../helpers/seeded-random.js';

const SETTINGS: PoolSettings = { maxAttempts: 3, retryBaseDelayMs: 100, cooldownMs: 30_000, circuitErrorRatio: 0.5, circuitMinRequests: 2, circuitWindowMs: 30_000, circuitOpenMs: 30_000 };
const TIMEOUTS = TEST_TIMEOUTS;

const { fake, track } = upstreamFixture();

const keyOf = (name: string, index = 0): string => `sk-${name}-routing-key-${String(index).padStart(4, '0')}`;
const fingerprint = (secret: string): string => createHash('sha256').update(secret).digest('hex').slice(0, 16);
const bearer = (key: string): string => `Bearer ${key}`;

function entry(name: string, baseUrl: string, overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { name, type: 'openai', baseUrl, apiKeys: [keyOf(name)], weight: 1, models: ['*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: true, websockets: true, anthropicVersion: undefined, ...overrides };
}

function poolOf(upstreams: UpstreamConfig[], settings: Partial<PoolSettings> = {}, random = () => 0): { pool: UpstreamPool; clock: { now: number } } {
  const clock = { now: Date.parse('2026-03-01T12:00:00Z') };
  const pool = new UpstreamPool(upstreams, { ...SETTINGS, ...settings }, {
    logger: createLogger('info', { write: () => undefined }),
    timeouts: TIMEOUTS,
    now: () => clock.now,
    sleep: async (ms) => void (clock.now += ms),
    // Random 0 (the default here): every draw lands on the first upstream that can take the request.
    random,
  });
  track(pool);
  return { pool, clock };
}

function chat(model: string | undefined, overrides: Partial<PoolRequest> = {}): PoolRequest {
  return { model, method: 'POST', path: '/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [] }), signal: new AbortController().signal, ...overrides };
}

async function send(pool: UpstreamPool, request: PoolRequest = chat('gpt-4o-mini')): Promise<{ status: number; upstream: string; upstreamKey: string | null; attempts: number }> {
  const answer = await pool.send(request);
  await answer.response.body.dump();
  return { status: answer.response.statusCode, upstream: answer.upstream, upstreamKey: answer.upstreamKey, attempts: answer.attempts };
}

describe('upstream routing: affinity', () => {
  it('sends a request to the upstream and key its object names, though the balancer would choose another', async () => {
    const a = await fake();
    const b = await fake();
    const { pool } = poolOf([entry('a', a.url), entry('b', b.url, { apiKeys: [keyOf('b', 0), keyOf('b', 1)] })]);
    const pinned = { upstream: 'b', upstreamKey: fingerprint(keyOf('b', 1)) };
    for (let i = 0; i < 3; i++) assert.deepEqual(await send(pool, chat('gpt-4o-mini', { affinity: pinned })), { status: 200, upstream: 'b', upstreamKey: pinned.upstreamKey, attempts: 1 });
    assert.deepEqual(b.requests.map((request) => request.headers.authorization), Array(3).fill(bearer(keyOf('b', 1))));
    assert.equal(a.requests.length, 0);
  });

  it('takes another key of the pinned upstream while the named key rests', async () => {
    const b = await fake();
    b.failWith(429, openAiError(429, 'Rate limit reached', 'requests', 'rate_limit_exceeded'), { 'retry-after': '60' });
    const { pool } = poolOf([entry('b', b.url, { apiKeys: [keyOf('b', 0), keyOf('b', 1)] })]);
    const pinned = { upstream: 'b', upstreamKey: fingerprint(keyOf('b', 0)) };
    assert.equal((await send(pool, chat('gpt-4o-mini', { affinity: pinned }))).upstreamKey, fingerprint(keyOf('b', 1)), 'the 429 moved the first request to the other key');
    assert.equal((await send(pool, chat('gpt-4o-mini', { affinity: pinned }))).upstreamKey, fingerprint(keyOf('b', 1)), 'the resting key is not used');
  });

  it('routes as usual when the named upstream is gone or does not serve the model', async () => {
    const a = await fake();
    const b = await fake();
    const { pool } = poolOf([entry('a', a.url), entry('b', b.url, { models: ['gpt-4o'] })]);
    assert.equal((await send(pool, chat('gpt-4o-mini', { affinity: { upstream: 'removed', upstreamKey: null } }))).upstream, 'a');
    assert.equal((await send(pool, chat('gpt-4o-mini', { affinity: { upstream: 'b', upstreamKey: null } }))).upstream, 'a');
    assert.equal((await send(pool, chat('gpt-4o', { affinity: { upstream: 'b', upstreamKey: null } }))).upstream, 'b');
  });
});

describe('upstream routing: what can be chosen', () => {
  it('still tries the only upstream when its circuit is open (panic mode), rather than refusing', async () => {
    const only = await fake();
    only.failWith(500, openAiError(500, 'down', 'server_error', null), {}, 2);
    const { pool } = poolOf([entry('only', only.url)], { maxAttempts: 1 });
    for (let i = 0; i < 2; i++) assert.equal((await send(pool)).status, 500);
    assert.equal(pool.state()[0]!.circuit, 'open');
    assert.deepEqual(await send(pool), { status: 200, upstream: 'only', upstreamKey: fingerprint(keyOf('only')), attempts: 1 });
  });

  it('chooses among the few upstreams left when most of fifty have every key disabled', async () => {
    const refusing = await fake();
    refusing.failWith(401, openAiError(401, 'Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'), {}, Number.POSITIVE_INFINITY);
    const left = await fake();
    const upstreams = Array.from({ length: 50 }, (_, i) => entry(`u${i}`, i === 20 || i === 40 ? left.url : refusing.url));
    const { pool } = poolOf(upstreams, { maxAttempts: 50 }, seeded(11));
    // Each request disables the refused keys it meets and moves on; soon only u20 and u40 are chosen.
    for (let i = 0; i < 100; i++) assert.equal((await send(pool)).status, 200);
    const disabled = pool.state().filter((upstream) => upstream.keys[0]!.status === 'disabled').map((upstream) => upstream.name);
    assert.deepEqual(disabled, upstreams.map((upstream) => upstream.name).filter((name) => name !== 'u20' && name !== 'u40'));
    left.reset();
    const served = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const answer = await send(pool);
      assert.equal(answer.attempts, 1);
      served.add(answer.upstream);
    }
    assert.deepEqual([...served].sort(), ['u20', 'u40']);
    assert.equal(left.requests.length, 20);
  });

  it('sends a request without a model only where its path needs none (Azure needs one for chat)', async () => {
    const azure = await fake();
    const openai = await fake();
    const { pool } = poolOf([entry('azure', azure.url, { type: 'azure', apiKeys: ['azure-key-0123456789abcdef'], apiVersion: '2024-10-21', deployments: { 'gpt-4o': 'dep' } }), entry('openai', openai.url, { models: ['gpt-*'] })]);
    assert.equal((await send(pool, chat(undefined))).upstream, 'openai');
    assert.equal((await send(pool, chat(undefined, { method: 'GET', path: '/files?limit=1', body: null }))).upstream, 'azure');
    await assert.rejects(pool.send(chat('claude-3')), (error: GatewayError) => error.code === 'model_not_found');
  });
});
