import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../../src/errors/index.js';
import { LimitTracker, type Estimate, type KeyLimits, type Reservation, type UsageBaseline } from '../../../src/limits/index.js';

const ZERO: UsageBaseline = { requests: 0, tokens: 0, costUsd: 0 };

interface Harness {
  tracker: LimitTracker;
  loads: Array<string | undefined>;
  set(iso: string): void;
}

/** A tracker whose clock starts at `iso` and whose usage database answers `baselines[since]`. */
function harness(iso: string, baselines: Record<string, UsageBaseline> = {}, delayMs = 0): Harness {
  let now = Date.parse(iso);
  const loads: Harness['loads'] = [];
  const tracker = new LimitTracker({
    now: () => now,
    loadUsage: async (_keyId, since) => {
      const key = since?.toISOString() ?? 'total';
      loads.push(since?.toISOString());
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      return baselines[key] ?? ZERO;
    },
  });
  return {
    tracker,
    loads,
    set: (next) => {
      now = Date.parse(next);
    },
  };
}

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

const tokens = (count: number): Estimate => ({ tokens: count, costUsd: 0 });
const dollars = (costUsd: number): Estimate => ({ tokens: 0, costUsd });

describe('token budgets', () => {
  it('default to all time: baseline + in-flight reservations + this request must fit', async () => {
    const h = harness('2030-03-14T12:00:00.000Z', { total: { requests: 40, tokens: 900, costUsd: 3 } });
    const limits: KeyLimits = { budgetTokens: 1000 };
    const inFlight = await h.tracker.admit('k1', 'app', limits, tokens(100));
    const error = await rejection(() => h.tracker.admit('k1', 'app', limits, tokens(1)));
    assert.equal(error.code, 'budget_exceeded');
    assert.equal(error.message, 'Budget exceeded for key "app": 1000 tokens in total (used 900, in flight 100, this request up to 1). It does not reset.');
    assert.equal(error.headers?.['x-should-retry'], 'false');
    assert.equal(error.headers?.['retry-after'], '60');
    assert.equal(error.headers?.['x-ratelimit-limit-requests'], undefined, 'no -requests headers without rpm or rpd');

    inFlight.settle({ tokens: 50, costUsd: 0 });
    const last = await h.tracker.admit('k1', 'app', limits, tokens(50));
    await rejection(() => h.tracker.admit('k1', 'app', limits, tokens(1)));
    last.refund();
    await h.tracker.admit('k1', 'app', limits, tokens(50));
    assert.deepEqual(h.loads, [undefined]);
  });

  it('per day reset at 00:00 UTC, reading the new day from the database', async () => {
    const h = harness('2030-03-14T23:00:00.000Z', { '2030-03-14T00:00:00.000Z': { requests: 1, tokens: 990, costUsd: 0 } });
    const limits: KeyLimits = { budgetTokens: 1000, budgetPeriod: 'day' };
    await h.tracker.admit('k1', 'app', limits, tokens(10));
    const error = await rejection(() => h.tracker.admit('k1', 'app', limits, tokens(10)));
    assert.equal(error.message, 'Budget exceeded for key "app": 1000 tokens per day (UTC) (used 990, in flight 10, this request up to 10). It resets at 00:00 UTC, in 1h0m0s.');
    assert.equal(error.headers?.['retry-after'], '3600');
    h.set('2030-03-14T23:59:59.999Z');
    await rejection(() => h.tracker.admit('k1', 'app', limits, tokens(10)));
    h.set('2030-03-15T00:00:00.000Z');
    await h.tracker.admit('k1', 'app', limits, tokens(1000));
    assert.deepEqual(h.loads, ['2030-03-14T00:00:00.000Z', '2030-03-15T00:00:00.000Z']);
  });

  it('per month reset on the 1st at 00:00 UTC, across a year end', async () => {
    const h = harness('2030-12-31T10:00:00.000Z', { '2030-12-01T00:00:00.000Z': { requests: 0, tokens: 5000, costUsd: 0 } });
    const limits: KeyLimits = { budgetTokens: 5000, budgetPeriod: 'month' };
    const error = await rejection(() => h.tracker.admit('k1', 'app', limits, tokens(1)));
    assert.equal(error.message, 'Budget exceeded for key "app": 5000 tokens per month (UTC) (used 5000, in flight 0, this request up to 1). It resets on 2031-01-01 at 00:00 UTC.');
    assert.equal(error.headers?.['retry-after'], String(14 * 3600));
    h.set('2031-01-01T00:00:00.000Z');
    await h.tracker.admit('k1', 'app', limits, tokens(5000));
    assert.deepEqual(h.loads, ['2030-12-01T00:00:00.000Z', '2031-01-01T00:00:00.000Z']);
  });
});

describe('USD budgets', () => {
  it('count baseline, reservations and settled cost; a budget that fits exactly is not lost to rounding', async () => {
    const h = harness('2030-03-14T12:00:00.000Z', { '2030-03-01T00:00:00.000Z': { requests: 9, tokens: 0, costUsd: 4.7 } });
    const limits: KeyLimits = { budgetUsd: 5, budgetPeriod: 'month' };
    const a = await h.tracker.admit('k1', 'app', limits, dollars(0.1));
    const b = await h.tracker.admit('k1', 'app', limits, dollars(0.2));
    const error = await rejection(() => h.tracker.admit('k1', 'app', limits, dollars(0.01)));
    assert.equal(error.code, 'budget_exceeded');
    assert.equal(error.message, 'Budget exceeded for key "app": $5.00 per month (UTC) (used $4.70, in flight $0.30, this request up to $0.01). It resets on 2030-04-01 at 00:00 UTC.');
    a.settle({ tokens: 0, costUsd: 0.05 });
    b.refund();
    await h.tracker.admit('k1', 'app', limits, dollars(0.25));
    await rejection(() => h.tracker.admit('k1', 'app', limits, dollars(0.001)));
  });

  it('let a request with an unknown price (estimate 0) through while under budget, then count its real cost', async () => {
    const h = harness('2030-03-14T12:00:00.000Z');
    const limits: KeyLimits = { budgetUsd: 1, budgetPeriod: 'day' };
    const unknown = await h.tracker.admit('k1', 'app', limits, dollars(0));
    unknown.settle({ tokens: 0, costUsd: 1.25 });
    const error = await rejection(() => h.tracker.admit('k1', 'app', limits, dollars(0)));
    assert.match(error.message, /\$1\.00 per day \(UTC\) \(used \$1\.25, in flight \$0\.00, this request up to \$0\.00\)/);
  });

  it('checks tokens and USD together; either one rejects', async () => {
    const h = harness('2030-03-14T12:00:00.000Z');
    const limits: KeyLimits = { budgetTokens: 100, budgetUsd: 1 };
    await h.tracker.admit('k1', 'app', limits, { tokens: 50, costUsd: 0.9 });
    const cost = await rejection(() => h.tracker.admit('k1', 'app', limits, { tokens: 10, costUsd: 0.2 }));
    assert.match(cost.message, /\$1\.00 in total/);
    const count = await rejection(() => h.tracker.admit('k1', 'app', limits, { tokens: 51, costUsd: 0 }));
    assert.match(count.message, /100 tokens in total/);
  });
});

describe('usage baselines', () => {
  it('are loaded once for concurrent first requests, then decided in arrival order', async () => {
    const h = harness('2030-03-14T12:00:00.000Z', { '2030-03-14T00:00:00.000Z': { requests: 0, tokens: 700, costUsd: 0 } }, 10);
    const limits: KeyLimits = { budgetTokens: 1000, budgetPeriod: 'day' };
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, async () => h.tracker.admit('k1', 'app', limits, tokens(100))));
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      [...Array<string>(3).fill('fulfilled'), ...Array<string>(17).fill('rejected')],
    );
    assert.deepEqual(h.loads, ['2030-03-14T00:00:00.000Z']);
  });

  it('are loaded once per period: rpd and a day budget share one load, a month budget has its own', async () => {
    const h = harness('2030-03-14T12:00:00.000Z');
    await h.tracker.admit('day', 'a', { rpd: 10, budgetTokens: 10, budgetPeriod: 'day' }, tokens(1));
    assert.deepEqual(h.loads, ['2030-03-14T00:00:00.000Z']);
    h.loads.length = 0;
    await h.tracker.admit('month', 'b', { rpd: 10, budgetUsd: 10, budgetPeriod: 'month' }, tokens(1));
    assert.deepEqual(h.loads.sort(), ['2030-03-01T00:00:00.000Z', '2030-03-14T00:00:00.000Z']);
    h.loads.length = 0;
    await h.tracker.admit('month', 'b', { rpd: 10, budgetUsd: 10, budgetPeriod: 'month' }, tokens(1));
    h.set('2030-03-15T00:00:01.000Z');
    await h.tracker.admit('month', 'b', { rpd: 10, budgetUsd: 10, budgetPeriod: 'month' }, tokens(1));
    assert.deepEqual(h.loads, ['2030-03-15T00:00:00.000Z'], 'a new day reloads the day only');
  });

  it('a failing load rejects every waiting request with the loader error, and the next request tries again', async () => {
    let fail = true;
    const broken = new Error('database is down');
    let calls = 0;
    const tracker = new LimitTracker({
      now: () => Date.parse('2030-03-14T12:00:00.000Z'),
      loadUsage: async () => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (fail) throw broken;
        return ZERO;
      },
    });
    const limits: KeyLimits = { rpd: 5 };
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, async () => tracker.admit('k1', 'app', limits, tokens(1))));
    for (const outcome of outcomes) assert.deepEqual(outcome, { status: 'rejected', reason: broken });
    assert.equal(calls, 1);
    fail = false;
    await tracker.admit('k1', 'app', limits, tokens(1));
    assert.equal(calls, 2);
  });

  it('a loader that throws synchronously rejects admit() rather than throwing', async () => {
    const tracker = new LimitTracker({
      loadUsage: () => {
        throw new Error('not a promise');
      },
    });
    await assert.rejects(async () => tracker.admit('k1', 'app', { rpd: 1 }, tokens(1)), /not a promise/);
  });

  it('a request still in flight at midnight counts toward the day it ends in, as the usage database dates it', async () => {
    const h = harness('2030-03-14T23:59:59.000Z');
    const limits: KeyLimits = { budgetTokens: 1000, budgetPeriod: 'day' };
    const straddling = await h.tracker.admit('k1', 'app', limits, tokens(900));
    h.set('2030-03-15T00:00:01.000Z');
    const morning = await h.tracker.admit('k1', 'app', limits, tokens(100));
    straddling.settle({ tokens: 850, costUsd: 0 });
    morning.settle({ tokens: 100, costUsd: 0 });
    await h.tracker.admit('k1', 'app', limits, tokens(50));
    await rejection(() => h.tracker.admit('k1', 'app', limits, tokens(1)));
  });
});

describe('reservations', () => {
  it('settle and refund are idempotent: the first call wins', async () => {
    const h = harness('2030-03-14T12:00:00.000Z');
    const limits: KeyLimits = { tpm: 1000, budgetTokens: 1000 };
    const settled = await h.tracker.admit('k1', 'app', limits, tokens(400));
    settled.settle({ tokens: 300, costUsd: 0 });
    settled.settle({ tokens: 300, costUsd: 0 });
    settled.refund();
    const refunded = await h.tracker.admit('k1', 'app', limits, tokens(400));
    refunded.refund();
    refunded.refund();
    refunded.settle({ tokens: 400, costUsd: 0 });
    assert.equal(h.tracker.headers('k1', limits)['x-ratelimit-remaining-tokens'], '700');
    await h.tracker.admit('k1', 'app', limits, tokens(700));
    await rejection(() => h.tracker.admit('k1', 'app', { budgetTokens: 1000 }, tokens(1)));
  });
  it('a refund or settle returns exactly its own reservation while others stay in flight', async () => {
    const h = harness('2030-03-14T12:00:00.000Z', { total: { requests: 0, tokens: 700, costUsd: 0.7 } });
    const limits: KeyLimits = { budgetTokens: 1000, budgetUsd: 1 };
    const a = await h.tracker.admit('k1', 'app', limits, { tokens: 100, costUsd: 0.1 });
    const b = await h.tracker.admit('k1', 'app', limits, { tokens: 100, costUsd: 0.1 });
    await h.tracker.admit('k1', 'app', limits, { tokens: 100, costUsd: 0.1 });
    await rejection(() => h.tracker.admit('k1', 'app', limits, { tokens: 1, costUsd: 0 }));
    a.refund();
    await h.tracker.admit('k1', 'app', limits, { tokens: 100, costUsd: 0 });
    await rejection(() => h.tracker.admit('k1', 'app', limits, { tokens: 1, costUsd: 0 }));
    b.settle({ tokens: 40, costUsd: 0.04 });
    await h.tracker.admit('k1', 'app', limits, { tokens: 60, costUsd: 0.06 });
    const full = await rejection(() => h.tracker.admit('k1', 'app', limits, { tokens: 1, costUsd: 0 }));
    assert.match(full.message, /used 740, in flight 260, this request up to 1/);
  });
});

describe('forget()', () => {
  it('drops windows and baselines; the next request reloads, and requests in flight settle into the new state', async () => {
    let baseline: UsageBaseline = { requests: 0, tokens: 900, costUsd: 0 };
    let loads = 0;
    const tracker = new LimitTracker({
      now: () => Date.parse('2030-03-14T12:00:00.000Z'),
      loadUsage: async () => {
        loads += 1;
        return baseline;
      },
    });
    const limits: KeyLimits = { rpm: 1, budgetTokens: 1000 };
    const inFlight = await tracker.admit('k1', 'app', limits, tokens(100));
    await rejection(() => tracker.admit('k1', 'app', limits, tokens(1)));
    baseline = ZERO; // an admin reset the budget
    tracker.forget('k1');
    tracker.forget('unknown');
    await tracker.admit('k1', 'app', { budgetTokens: 1000 }, tokens(900));
    assert.equal(loads, 2);
    inFlight.settle({ tokens: 100, costUsd: 0 });
    await rejection(() => tracker.admit('k1', 'app', { budgetTokens: 1000 }, tokens(1)));
  });

  it('during a load, re-decides the waiting requests against the key as it is after forget()', async () => {
    const pending: Array<(baseline: UsageBaseline) => void> = [];
    const tracker = new LimitTracker({
      now: () => Date.parse('2030-03-14T12:00:00.000Z'),
      loadUsage: () => new Promise<UsageBaseline>((resolve) => pending.push(resolve)),
    });
    const limits: KeyLimits = { rpd: 2 };
    const waiting = Promise.allSettled([1, 2, 3].map(async () => tracker.admit('k1', 'app', limits, tokens(1))));
    tracker.forget('k1');
    pending[0]!({ requests: 2, tokens: 0, costUsd: 0 }); // stale: read before forget()
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(pending.length, 2, 'the waiting requests started a fresh load');
    pending[1]!({ requests: 1, tokens: 0, costUsd: 0 });
    const outcomes = await waiting;
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ['fulfilled', 'rejected', 'rejected'],
    );
  });
});
