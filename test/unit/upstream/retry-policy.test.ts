import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../../../src/config/index.js';
import type { UpstreamRequest } from '../../../src/upstream/client.js';
import { PoolMember } from '../../../src/upstream/pool-member.js';
import { Failure, RetryPolicy } from '../../../src/upstream/retry-policy.js';
import { Router } from '../../../src/upstream/router.js';

// Members own an undici Pool each; nothing here sends, so they never connect.
const CIRCUIT = { errorRatio: 0.5, minRequests: 10, windowMs: 10_000, openMs: 30_000 };
const members: PoolMember[] = [];
after(async () => {
  await Promise.all(members.map((member) => member.connection.close()));
});

function member(name: string, keys = 1): PoolMember {
  const config: UpstreamConfig = { name, type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKeys: Array.from({ length: keys }, (_, i) => `sk-${name}-policy-key-000${i}`), weight: 1, models: ['*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: true, websockets: true, anthropicVersion: undefined };
  const built = new PoolMember(config, CIRCUIT, 1_000);
  members.push(built);
  return built;
}

const NOW = 1_000_000;
const request = (body: UpstreamRequest['body'] = '{}'): UpstreamRequest => ({ model: 'gpt-4o', method: 'POST', path: '/chat/completions', headers: {}, body, signal: new AbortController().signal });

/** An upstream answer as undici hands it over; the policy reads the status and headers only. */
const answer = (statusCode: number, headers: Record<string, string> = {}): Dispatcher.ResponseData => ({ statusCode, headers }) as unknown as Dispatcher.ResponseData;

function setup(list: PoolMember[]): { router: Router; policy: RetryPolicy } {
  const router = new Router(list, () => NOW, () => 0);
  return { router, policy: new RetryPolicy({ maxAttempts: 3, retryBaseDelayMs: 100 }, router, () => NOW, () => 0) };
}

describe('retry policy: what is worth another attempt', () => {
  it('gives a streamed body one attempt, anything else max_attempts', () => {
    const { policy } = setup([member('a')]);
    assert.equal(policy.attemptsFor(request()), 3);
    assert.equal(policy.attemptsFor(request(Readable.from(['x']))), 1);
  });

  it('judges 429 and 401/402/403 faults of the key, 5xx faults of the upstream, anything else final', () => {
    const { policy } = setup([member('a')]);
    const limited = policy.judge(answer(429, { 'retry-after': '2' }))!;
    assert.deepEqual([limited.keyFault, limited.upstreamFault, limited.retryAfterMs], [true, false, 2_000]);
    assert.deepEqual([policy.judge(answer(401))!.keyFault, policy.judge(answer(403))!.retryAfterMs], [true, undefined]);
    const failed = policy.judge(answer(503, { 'retry-after-ms': '250' }))!;
    assert.deepEqual([failed.keyFault, failed.upstreamFault, failed.retryAfterMs], [false, true, 250]);
    for (const status of [200, 400, 404, 501]) assert.equal(policy.judge(answer(status)), undefined, String(status));
  });

  it("judges Anthropic's 529 (overloaded) a fault of the upstream, like 503, honouring its Retry-After", () => {
    const { policy } = setup([member('a')]);
    const overloaded = policy.judge(answer(529, { 'retry-after': '1' }))!;
    assert.deepEqual([overloaded.keyFault, overloaded.upstreamFault, overloaded.retryAfterMs], [false, true, 1_000]);
  });

  it('retries a refused connection, not an abort', () => {
    const { policy } = setup([member('a')]);
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.equal(policy.failed(refused, false).retryable, true);
    assert.equal(policy.failed(refused, true).retryable, false);
  });
});

describe('retry policy: when and where', () => {
  it('goes to another upstream at once after an upstream fault', () => {
    const [a, b] = [member('a'), member('b')];
    const { router, policy } = setup([a, b]);
    const route = router.route(request());
    assert.deepEqual(policy.plan(route, a.keys[0]!, policy.judge(answer(500))!, 1, 3, false), { wait: 0, next: b.keys[0] });
  });

  it('goes to another key of the same upstream at once after a key fault', () => {
    const a = member('a', 2);
    const { router, policy } = setup([a]);
    const route = router.route(request());
    assert.deepEqual(policy.plan(route, a.keys[0]!, policy.judge(answer(401))!, 1, 3, false), { wait: 0, next: a.keys[1] });
  });

  it("waits on the same upstream for its Retry-After up to 10 s, else for the backoff; stops past 10 s", () => {
    const a = member('a');
    const { router, policy } = setup([a]);
    assert.deepEqual(policy.plan(router.route(request()), a.keys[0]!, policy.judge(answer(503, { 'retry-after': '3' }))!, 1, 3, false), { wait: 3_000, next: a.keys[0] });
    // random() = 0: the low end of the jitter, 100 × 2^(attempt - 1) × 0.5.
    assert.deepEqual(policy.plan(router.route(request()), a.keys[0]!, policy.judge(answer(500))!, 2, 3, false), { wait: 100, next: a.keys[0] });
    assert.equal(policy.plan(router.route(request()), a.keys[0]!, policy.judge(answer(503, { 'retry-after': '11' }))!, 1, 3, false), undefined);
  });

  it('waits for a resting key when it is back within 10 s, and stops when it is not', () => {
    const a = member('a');
    const { router, policy } = setup([a]);
    a.keys[0]!.health.coolFor(NOW, 4_000);
    assert.deepEqual(policy.plan(router.route(request()), a.keys[0]!, policy.judge(answer(429))!, 1, 3, false), { wait: 4_000, next: undefined });
    assert.equal(policy.waitForCapacity(router.route(request())), 4_000);
    a.keys[0]!.health.coolFor(NOW, 60_000);
    assert.equal(policy.plan(router.route(request()), a.keys[0]!, policy.judge(answer(429))!, 1, 3, false), undefined);
    assert.equal(policy.waitForCapacity(router.route(request())), undefined);
  });

  it('stops after the last attempt, once the caller has gone, or when another attempt cannot help', () => {
    const [a, b] = [member('a'), member('b')];
    const { router, policy } = setup([a, b]);
    const fault = policy.judge(answer(500))!;
    assert.equal(policy.plan(router.route(request()), a.keys[0]!, fault, 3, 3, false), undefined);
    assert.equal(policy.plan(router.route(request()), a.keys[0]!, fault, 1, 3, true), undefined);
    assert.equal(policy.plan(router.route(request()), a.keys[0]!, policy.failed(new Error('our own bug'), false), 1, 3, false), undefined);
    assert.ok(policy.failed(new Error('x'), false) instanceof Failure);
  });
});
