import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { requirePostgres, type TestDatabase } from '../helpers/databases.js';
import { chatCompletion, FakeUpstream, openAiError, sendJson } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { dropRedisPrefix, requireRedis, testRedisPrefix } from '../helpers/redis.js';

/**
 * Upstream key health is shared: a key one instance saw refused (401) or rate-limited (429) is
 * skipped by the others without a failed attempt of their own, and an instance that starts later
 * reads what is still marked. The fake upstream answers by key and records which key each request
 * carried.
 */

const redis = requireRedis();
const postgres = requirePostgres();
const ACCESS = 'access-token-cluster-health-0123';
const K1 = 'sk-cluster-health-key-one-000000000001';
const K2 = 'sk-cluster-health-key-two-000000000002';
const K3 = 'sk-cluster-health-key-three-0000000003';
const RETRY_AFTER_S = 4;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const fingerprint = (secret: string): string => createHash('sha256').update(secret).digest('hex').slice(0, 16);

async function within(timeoutMs: number, what: string, done: () => boolean): Promise<number> {
  const started = performance.now();
  while (!done()) {
    if (performance.now() - started > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(2);
  }
  return performance.now() - started;
}

async function chat(gateway: TestGateway): Promise<number> {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ACCESS}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

/** The status of upstream key `index` as /admin/status shows it. */
function keyStatus(gateway: TestGateway, index: number): { status: string; disabledReason?: string; coolingUntil?: string } {
  const key = gateway.gateway.runtime.current.upstreams.state()[0]!.keys[index]!;
  return key as { status: string; disabledReason?: string; coolingUntil?: string };
}

describe('upstream key health across instances', { skip: redis.skip || postgres.skip }, () => {
  const prefix = testRedisPrefix();
  const measured: Record<string, number> = {};
  /** How the fake answers each key. */
  const answers = new Map<string, 'ok' | 401 | 429>([
    [K1, 'ok'],
    [K2, 'ok'],
    [K3, 'ok'],
  ]);
  let database: TestDatabase;
  let upstream: FakeUpstream;
  let a: TestGateway;
  let b: TestGateway;
  let c: TestGateway | undefined;
  let direct: Redis;
  let env: Record<string, string>;
  let listener: Redis;
  const wire: string[] = [];

  const keysUsedFrom = (from: number): string[] => upstream.requests.slice(from).map((request) => String(request.headers.authorization).replace('Bearer ', ''));

  before(async () => {
    upstream = await FakeUpstream.start();
    upstream.script((request, response) => {
      const key = String(request.headers.authorization).replace('Bearer ', '');
      const answer = answers.get(key);
      if (answer === 401) sendJson(response, 401, openAiError(401, 'Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'));
      else if (answer === 429) sendJson(response, 429, openAiError(429, 'Rate limit reached', 'requests', 'rate_limit_exceeded'), { 'retry-after': String(RETRY_AFTER_S) });
      else sendJson(response, 200, chatCompletion('gpt-4o-mini', 'hello'));
    }, 1_000_000);
    database = await postgres.open();
    direct = new Redis(redis.url);
    listener = new Redis(redis.url);
    listener.on('pmessage', (_pattern: string, _channel: string, message: string) => wire.push(message));
    await listener.psubscribe(`${prefix}*`);
    env = { BASE_URL: upstream.url, APIKEY: `${K1}|${K2}|${K3}`, ACCESS_TOKEN: ACCESS, DATABASE_URL: database.url, REDIS_URL: redis.url, REDIS_PREFIX: prefix, MAX_ATTEMPTS: '3', RETRY_BASE_DELAY: '0' };
    a = await startTestGateway(env);
    b = await startTestGateway(env);
  });
  after(async () => {
    process.stdout.write(`# measured propagation (ms): ${JSON.stringify(measured)}\n`);
    await a?.close();
    await b?.close();
    await c?.close();
    direct?.disconnect();
    listener?.disconnect();
    await database?.cleanup();
    await upstream?.close();
    await dropRedisPrefix(redis.url, prefix);
  });

  it('skips on B a key A saw refused with 401, without trying it', async () => {
    answers.set(K1, 401);
    // A's requests rotate over the keys: one of the first three meets K1 and sets it aside.
    for (let i = 0; i < 3 && keyStatus(a, 0).status !== 'disabled'; i++) assert.equal(await chat(a), 200);
    assert.equal(keyStatus(a, 0).status, 'disabled');
    measured.disabled = await within(1000, 'K1 set aside on B', () => keyStatus(b, 0).status === 'disabled');
    assert.match(keyStatus(b, 0).disabledReason ?? '', /^HTTP 401, seen by another instance$/);
    const from = upstream.requests.length;
    for (let i = 0; i < 6; i++) assert.equal(await chat(b), 200);
    assert.deepEqual(keysUsedFrom(from).filter((key) => key === K1), [], 'B never sent K1');
  });

  it('rests on B a key A saw rate-limited, until its Retry-After is over', async () => {
    answers.set(K2, 429);
    for (let i = 0; i < 4 && keyStatus(a, 1).status !== 'cooling'; i++) assert.equal(await chat(a), 200);
    assert.equal(keyStatus(a, 1).status, 'cooling');
    const cooledAt = Date.now();
    answers.set(K2, 'ok');
    measured.cooling = await within(1000, 'K2 resting on B', () => keyStatus(b, 1).status === 'cooling');
    const until = Date.parse(keyStatus(b, 1).coolingUntil!);
    assert.ok(Math.abs(until - (cooledAt + RETRY_AFTER_S * 1000)) < 1500, `B rests K2 for A's Retry-After (until ${new Date(until).toISOString()})`);
    const from = upstream.requests.length;
    for (let i = 0; i < 4; i++) assert.equal(await chat(b), 200);
    assert.deepEqual(keysUsedFrom(from), [K3, K3, K3, K3], 'only K3 while K1 is set aside and K2 rests');

    // An instance starting now reads both marks.
    c = await startTestGateway(env);
    assert.equal(keyStatus(c, 0).status, 'disabled');
    assert.equal(keyStatus(c, 1).status, 'cooling');
    assert.equal(keyStatus(c, 2).status, 'healthy');

    await within(RETRY_AFTER_S * 1000 + 2000, 'K2 rested on B', () => keyStatus(b, 1).status === 'healthy');
    const later = upstream.requests.length;
    for (let i = 0; i < 4; i++) assert.equal(await chat(b), 200);
    assert.ok(keysUsedFrom(later).includes(K2), 'K2 serves again on B once its rest is over');
  });

  it('clears the shared mark of a refused key on reload, so a fixed key is tried again', async () => {
    assert.ok(c, 'started by the previous test');
    const mark = `${prefix}upstream-key:${fingerprint(K1)}:default`;
    assert.equal(JSON.parse((await direct.get(mark))!).state, 'disabled');
    const ttl = await direct.pttl(mark);
    assert.ok(ttl > 0 && ttl <= 15 * 60 * 1000, `the mark expires by itself (${ttl} ms left)`);
    answers.set(K1, 'ok');
    const result = await c.gateway.reload(c.config);
    assert.equal(result.ok, true);
    assert.equal(await direct.get(mark), null);
    assert.equal(keyStatus(c, 0).status, 'healthy');
  });

  it('shares fingerprints, never the keys', async () => {
    assert.ok(wire.length >= 2, `messages seen: ${wire.length}`);
    // The reload in the previous test announced its key sync too (`"scope":"all"`).
    for (const message of wire) assert.match(message, /^\{"v":1,"from":"[0-9a-f]{16}",("upstream":"default","key":"[0-9a-f]{16}","state":"(disabled","status":401|cooling","ms":\d+)|"scope":"all")\}$/);
    const stored: string[] = [];
    for (const key of await direct.keys(`${prefix}*`)) if ((await direct.type(key)) === 'string') stored.push(key, (await direct.get(key))!);
    const everything = [...wire, ...stored].join('\n');
    for (const secret of [K1, K2, K3]) assert.ok(!everything.includes(secret.slice(-12)), 'an upstream key went into Redis');
    assert.ok(everything.includes(fingerprint(K1)));
  });
});
