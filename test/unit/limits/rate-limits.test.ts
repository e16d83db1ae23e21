import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../../src/errors/index.js';
import { LimitTracker, type Estimate, type KeyLimits, type Reservation, type UsageBaseline } from '../../../src/limits/index.js';

const NOON = Date.parse('2030-03-14T12:00:00.000Z');
const SMALL: Estimate = { tokens: 10, costUsd: 0 };
const ZERO: UsageBaseline = { requests: 0, tokens: 0, costUsd: 0 };

interface Harness {
  tracker: LimitTracker;
  loads: Array<{ keyId: string; since: string | undefined }>;
  advance(ms: number): void;
  set(iso: string): void;
  readonly now: number;
}

function harness(loadUsage: (keyId: string, since: Date | undefined) => Promise<UsageBaseline> = async () => ZERO): Harness {
  let now = NOON;
  const loads: Harness['loads'] = [];
  const tracker = new LimitTracker({
    now: () => now,
    loadUsage: (keyId, since) => {
      loads.push({ keyId, since: since?.toISOString() });
      return loadUsage(keyId, since);
    },
  });
  return {
    tracker,
    loads,
    advance: (ms) => {
      now += ms;
    },
    set: (iso) => {
      now = Date.parse(iso);
    },
    get now() {
      return now;
    },
  };
}

/** The 429 a rejected admit() carries; fails the test when it was admitted instead. */
async function rejection(admit: () => Reservation | Promise<Reservation>): Promise<GatewayError> {
  try {
    await admit();
  } catch (error) {
    assert.ok(error instanceof GatewayError, `expected a GatewayError, got ${String(error)}`);
    assert.equal(error.status, 429);
    return error;
  }
  assert.fail('expected the request to be rejected');
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Indexes of the admitted requests among `count` fired at once. */
async function fireAtOnce(tracker: LimitTracker, count: number, limits: KeyLimits, estimate: Estimate = SMALL): Promise<{ admitted: number[]; errors: GatewayError[] }> {
  const outcomes = await Promise.allSettled(Array.from({ length: count }, async () => tracker.admit('k1', 'app', limits, estimate)));
  const admitted: number[] = [];
  const errors: GatewayError[] = [];
  outcomes.forEach((outcome, index) => {
    if (outcome.status === 'fulfilled') admitted.push(index);
    else errors.push(outcome.reason as GatewayError);
  });
  return { admitted, errors };
}

describe('keys without limits', () => {
  it('are admitted at once with one shared reservation, never loading usage, with no headers', async () => {
    const h = harness();
    const first = h.tracker.admit('k1', 'app', {}, SMALL);
    const second = h.tracker.admit('k2', 'other', { rpm: null, tpm: undefined, budgetPeriod: 'day' }, SMALL);
    assert.equal(first, second);
    (await first).settle({ tokens: 5, costUsd: 1 });
    (await second).refund();
    assert.deepEqual(h.loads, []);
    assert.deepEqual(h.tracker.headers('k1', {}), {});
  });
});

describe('rpm', () => {
  it('admits exactly rpm of 50 requests fired at once, the first 10 to arrive', async () => {
    const h = harness();
    const { admitted, errors } = await fireAtOnce(h.tracker, 50, { rpm: 10 });
    assert.deepEqual(admitted, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(errors.length, 40);
    for (const error of errors) assert.equal(error.code, 'rate_limit_exceeded');
    assert.deepEqual(h.loads, [], 'rpm alone never reads the database');
  });

  it('stays exact when the first requests wait for a slow usage load', async () => {
    const slow = deferred<UsageBaseline>();
    const h = harness(() => slow.promise);
    const limits: KeyLimits = { rpm: 10, rpd: 1000 };
    const early = fireAtOnce(h.tracker, 30, limits);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const late = fireAtOnce(h.tracker, 20, limits);
    slow.resolve({ requests: 3, tokens: 0, costUsd: 0 });
    const [first, second] = await Promise.all([early, late]);
    assert.deepEqual(first.admitted, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(second.admitted, []);
    assert.equal(h.loads.length, 1, 'one load shared by all 50');
  });

  it('rejects with the real wait: Retry-After rounded up, retry-after-ms exact, and the message says so', async () => {
    const h = harness();
    for (let i = 0; i < 10; i += 1) {
      await h.tracker.admit('k1', 'app', { rpm: 10 }, SMALL);
      h.advance(1000);
    }
    h.advance(18_800); // now = start + 28.8 s; the oldest admission expires at start + 60 s
    const error = await rejection(() => h.tracker.admit('k1', 'app', { rpm: 10 }, SMALL));
    assert.equal(error.message, 'Rate limit reached for key "app": 10 requests per minute. Try again in 32s.');
    assert.equal(error.headers?.['retry-after'], '32');
    assert.equal(error.headers?.['retry-after-ms'], '31200');
    assert.equal(error.headers?.['x-ratelimit-limit-requests'], '10');
    assert.equal(error.headers?.['x-ratelimit-remaining-requests'], '0');
    assert.equal(error.headers?.['x-ratelimit-reset-requests'], '40.2s');
    assert.equal(error.headers?.['x-should-retry'], undefined);
  });

  it('frees a slot exactly when the oldest admission turns 60 s old, not a millisecond before', async () => {
    const h = harness();
    const start = h.now;
    for (let i = 0; i < 10; i += 1) {
      await h.tracker.admit('k1', 'app', { rpm: 10 }, SMALL);
      h.advance(1000);
    }
    h.set(new Date(start + 59_999).toISOString());
    const almost = await rejection(() => h.tracker.admit('k1', 'app', { rpm: 10 }, SMALL));
    assert.equal(almost.headers?.['retry-after'], '1');
    assert.equal(almost.headers?.['retry-after-ms'], '1');
    h.advance(1);
    await h.tracker.admit('k1', 'app', { rpm: 10 }, SMALL);
    const next = await rejection(() => h.tracker.admit('k1', 'app', { rpm: 10 }, SMALL));
    assert.equal(next.headers?.['retry-after-ms'], '1000', 'the next slot is the admission made 1 s after the first');
  });

  it('counts a request that failed upstream: only tokens and cost are refunded', async () => {
    const h = harness();
    const limits: KeyLimits = { rpm: 2, tpm: 1000 };
    (await h.tracker.admit('k1', 'app', limits, { tokens: 400, costUsd: 0 })).refund();
    (await h.tracker.admit('k1', 'app', limits, { tokens: 400, costUsd: 0 })).refund();
    const error = await rejection(() => h.tracker.admit('k1', 'app', limits, { tokens: 1, costUsd: 0 }));
    assert.match(error.message, /2 requests per minute/);
    assert.equal(error.headers?.['x-ratelimit-remaining-tokens'], '1000');
  });

  it('does not count rejected requests', async () => {
    const h = harness();
    await h.tracker.admit('k1', 'app', { rpm: 1 }, SMALL);
    for (let i = 0; i < 5; i += 1) await rejection(() => h.tracker.admit('k1', 'app', { rpm: 1 }, SMALL));
    h.advance(60_000);
    await h.tracker.admit('k1', 'app', { rpm: 1 }, SMALL);
  });

  it('keeps keys apart', async () => {
    const h = harness();
    await h.tracker.admit('k1', 'app', { rpm: 1 }, SMALL);
    await h.tracker.admit('k2', 'other', { rpm: 1 }, SMALL);
    await rejection(() => h.tracker.admit('k1', 'app', { rpm: 1 }, SMALL));
  });
});

describe('rpd', () => {
  it('adds the day baseline from the usage database and resets at 00:00 UTC', async () => {
    const h = harness(async (_keyId, since) => (since?.toISOString() === '2030-03-14T00:00:00.000Z' ? { requests: 998, tokens: 0, costUsd: 0 } : ZERO));
    h.set('2030-03-14T23:59:58.500Z');
    const { admitted, errors } = await fireAtOnce(h.tracker, 5, { rpd: 1000 });
    assert.deepEqual(admitted, [0, 1]);
    const error = errors[0]!;
    assert.equal(error.code, 'rate_limit_exceeded');
    assert.equal(error.message, 'Rate limit reached for key "app": 1000 requests per day (UTC). It resets at 00:00 UTC. Try again in 2s.');
    assert.equal(error.headers?.['retry-after'], '2');
    assert.equal(error.headers?.['retry-after-ms'], '1500');
    assert.equal(error.headers?.['x-ratelimit-limit-requests'], '1000');
    assert.equal(error.headers?.['x-ratelimit-remaining-requests'], '0');
    assert.equal(error.headers?.['x-ratelimit-reset-requests'], '1.5s');
    assert.deepEqual(h.loads, [{ keyId: 'k1', since: '2030-03-14T00:00:00.000Z' }]);

    h.set('2030-03-15T00:00:00.000Z');
    await h.tracker.admit('k1', 'app', { rpd: 1000 }, SMALL);
    assert.deepEqual(h.loads.at(-1), { keyId: 'k1', since: '2030-03-15T00:00:00.000Z' });
    assert.equal(h.loads.length, 2);
  });

  it('reports rpd, the binding limit, in the -requests headers even when rpm is set', async () => {
    const h = harness(async () => ({ requests: 5, tokens: 0, costUsd: 0 }));
    const error = await rejection(() => h.tracker.admit('k1', 'app', { rpm: 100, rpd: 5 }, SMALL));
    assert.equal(error.headers?.['x-ratelimit-limit-requests'], '5');
    assert.equal(error.headers?.['x-ratelimit-reset-requests'], '12h0m0s');
    assert.equal(error.headers?.['retry-after'], String(12 * 3600));
  });
});

describe('tpm', () => {
  it('reserves the estimate, settles to the real total and refunds on error', async () => {
    const h = harness();
    const limits: KeyLimits = { tpm: 1000 };
    const first = await h.tracker.admit('k1', 'app', limits, { tokens: 600, costUsd: 0 });
    const tooMuch = await rejection(() => h.tracker.admit('k1', 'app', limits, { tokens: 500, costUsd: 0 }));
    assert.equal(tooMuch.message, 'Rate limit reached for key "app": 1000 tokens per minute (used 600, requested 500). Try again in 1m0s.');
    assert.equal(tooMuch.headers?.['x-ratelimit-remaining-tokens'], '400');
    first.settle({ tokens: 300, costUsd: 0 });
    h.advance(10_000);
    const second = await h.tracker.admit('k1', 'app', limits, { tokens: 500, costUsd: 0 });
    assert.equal(h.tracker.headers('k1', limits)['x-ratelimit-remaining-tokens'], '200');
    second.refund();
    assert.equal(h.tracker.headers('k1', limits)['x-ratelimit-remaining-tokens'], '700');
    await h.tracker.admit('k1', 'app', limits, { tokens: 700, costUsd: 0 });
    assert.equal(h.tracker.headers('k1', limits)['x-ratelimit-remaining-tokens'], '0');
  });

  it('says when enough tokens leave the window for this request', async () => {
    const h = harness();
    const limits: KeyLimits = { tpm: 1000 };
    await h.tracker.admit('k1', 'app', limits, { tokens: 300, costUsd: 0 }); // leaves at +60 s
    h.advance(5_000);
    await h.tracker.admit('k1', 'app', limits, { tokens: 300, costUsd: 0 }); // leaves at +65 s
    h.advance(5_000);
    await h.tracker.admit('k1', 'app', limits, { tokens: 300, costUsd: 0 }); // leaves at +70 s
    h.advance(20_000); // +30 s, 900 used
    const error = await rejection(() => h.tracker.admit('k1', 'app', limits, { tokens: 500, costUsd: 0 }));
    assert.equal(error.headers?.['retry-after-ms'], '35000', 'two entries must leave: the second at +65 s');
    assert.equal(error.headers?.['x-ratelimit-reset-tokens'], '40s');
    h.advance(34_999);
    await rejection(() => h.tracker.admit('k1', 'app', limits, { tokens: 500, costUsd: 0 }));
    h.advance(1);
    await h.tracker.admit('k1', 'app', limits, { tokens: 500, costUsd: 0 });
  });

  it('rejects a request larger than tpm outright, and says so', async () => {
    const h = harness();
    const error = await rejection(() => h.tracker.admit('k1', 'app', { tpm: 1000 }, { tokens: 1001, costUsd: 0 }));
    assert.equal(error.code, 'rate_limit_exceeded');
    assert.match(error.message, /^Request too large for key "app": it may use up to 1001 tokens .*limit of 1000 tokens per minute/);
    assert.equal(error.headers?.['retry-after'], '60');
    assert.equal(error.headers?.['x-should-retry'], 'false');
    await h.tracker.admit('k1', 'app', { tpm: 1000 }, { tokens: 1000, costUsd: 0 });
  });

  it('stops adjusting a reservation once it has left the window', async () => {
    const h = harness();
    const limits: KeyLimits = { tpm: 1000 };
    const long = await h.tracker.admit('k1', 'app', limits, { tokens: 800, costUsd: 0 });
    h.advance(90_000);
    long.settle({ tokens: 900, costUsd: 0 });
    assert.equal(h.tracker.headers('k1', limits)['x-ratelimit-remaining-tokens'], '1000');
  });
});

describe('headers()', () => {
  it('describes the current rpm and tpm windows in OpenAI format', async () => {
    const h = harness();
    const limits: KeyLimits = { rpm: 60, tpm: 10_000 };
    assert.deepEqual(h.tracker.headers('k1', limits), {
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '60',
      'x-ratelimit-reset-requests': '0s',
      'x-ratelimit-limit-tokens': '10000',
      'x-ratelimit-remaining-tokens': '10000',
      'x-ratelimit-reset-tokens': '0s',
    });
    (await h.tracker.admit('k1', 'app', limits, { tokens: 1200, costUsd: 0 })).settle({ tokens: 950, costUsd: 0 });
    h.advance(5_988);
    await h.tracker.admit('k1', 'app', limits, { tokens: 100, costUsd: 0 });
    h.advance(47_000);
    assert.deepEqual(h.tracker.headers('k1', limits), {
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '58',
      'x-ratelimit-reset-requests': '13s',
      'x-ratelimit-limit-tokens': '10000',
      'x-ratelimit-remaining-tokens': '8950',
      'x-ratelimit-reset-tokens': '13s',
    });
    h.advance(12_990);
    assert.equal(h.tracker.headers('k1', limits)['x-ratelimit-reset-requests'], '10ms');
    assert.deepEqual(h.tracker.headers('k1', { tpm: 5 }), {
      'x-ratelimit-limit-tokens': '5',
      'x-ratelimit-remaining-tokens': '0',
      'x-ratelimit-reset-tokens': '10ms',
    });
  });

  it('is empty for a key with neither rpm nor tpm', () => {
    const h = harness();
    assert.deepEqual(h.tracker.headers('k1', { rpd: 10, budgetUsd: 5 }), {});
  });
});
