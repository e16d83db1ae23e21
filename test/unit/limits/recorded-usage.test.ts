import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../../src/errors/index.js';
import { LimitTracker, type Demand, type KeyLimits, type Reservation, type UsageBaseline } from '../../../src/limits/index.js';

const ZERO: UsageBaseline = { requests: 0, tokens: 0, costUsd: 0 };

function tracker(start = Date.parse('2030-03-14T12:00:00.000Z')): { tracker: LimitTracker; loads: number; advance(ms: number): void } {
  let now = start;
  const state = {
    tracker: new LimitTracker({
      now: () => now,
      loadUsage: () => {
        state.loads += 1;
        return Promise.resolve(ZERO);
      },
    }),
    loads: 0,
    advance: (ms: number) => {
      now += ms;
    },
  };
  return state;
}

async function refusal(admit: () => Reservation | Promise<Reservation>): Promise<GatewayError> {
  try {
    await admit();
  } catch (error) {
    assert.ok(error instanceof GatewayError, String(error));
    return error;
  }
  assert.fail('expected a 429');
}

/** Usage recorded without a reservation (a background response's, seen after its request ended): LimitStore.record. */
describe('usage recorded outside a reservation', () => {
  it('counts into the budget of a key the instance tracks, so the next request that does not fit is refused', async () => {
    const h = tracker();
    const limits: KeyLimits = { budgetTokens: 1000, budgetUsd: 1 };
    (await h.tracker.admit('k', 'app', limits, { tokens: 10, costUsd: 0 })).settle({ tokens: 10, costUsd: 0 });
    h.tracker.record('k', limits, { tokens: 900, costUsd: 0.5 });
    await h.tracker.admit('k', 'app', limits, { tokens: 90, costUsd: 0 });
    const error = await refusal(() => h.tracker.admit('k', 'app', limits, { tokens: 1, costUsd: 0 }));
    assert.equal(error.code, 'budget_exceeded');
    assert.match(error.message, /used 910/);
    h.tracker.record('k', { budgetUsd: 1 }, { tokens: 0, costUsd: 0.6 });
    assert.equal((await refusal(() => h.tracker.admit('k', 'app', { budgetUsd: 1 }, { tokens: 0, costUsd: 0 }))).code, 'budget_exceeded', 'USD counted too');
  });

  it('starts the tpm window of a key not seen yet, and leaves its budget to the usage database', async () => {
    const h = tracker();
    h.tracker.record('fresh', { tpm: 100 }, { tokens: 80, costUsd: 0 });
    const error = await refusal(() => h.tracker.admit('fresh', 'app', { tpm: 100 }, { tokens: 30, costUsd: 0 }));
    assert.equal(error.code, 'rate_limit_exceeded');
    h.advance(60_001);
    await h.tracker.admit('fresh', 'app', { tpm: 100 }, { tokens: 30, costUsd: 0 });

    h.tracker.record('budgeted', { budgetTokens: 100 }, { tokens: 500, costUsd: 0 });
    assert.equal(h.loads, 0, 'nothing read for a key with no state');
    await h.tracker.admit('budgeted', 'app', { budgetTokens: 100 }, { tokens: 50, costUsd: 0 });
    assert.equal(h.loads, 1, 'its baseline comes from the database on its first request');
  });

  it('is a no-op for a key without limits', () => {
    const h = tracker();
    h.tracker.record('free', {}, { tokens: 1e9, costUsd: 1e9 });
    assert.equal(h.loads, 0);
  });
});

describe('a reservation kept after its request ended', () => {
  it('holds the estimate instead of the bound (no body kept alive), until settled by what was used', async () => {
    const h = tracker();
    const limits: KeyLimits = { budgetTokens: 1000 };
    let estimated = 0;
    // A bound of 600 tokens for a request whose estimate is 300.
    const demand: Demand = {
      tokens: 600,
      costUsd: 0,
      exact: () => {
        estimated += 1;
        return { tokens: 300, costUsd: 0 };
      },
    };
    const kept = await h.tracker.admit('k', 'app', limits, demand);
    kept.keep!();
    kept.keep!();
    assert.equal(estimated, 1, 'the estimate is computed once, when kept');
    // 300 held: 700 more fit, 701 do not — decided without asking the kept request again.
    const next = await h.tracker.admit('k', 'app', limits, { tokens: 700, costUsd: 0 });
    next.refund();
    assert.equal((await refusal(() => h.tracker.admit('k', 'app', limits, { tokens: 701, costUsd: 0 }))).code, 'budget_exceeded');
    assert.equal(estimated, 1);
    kept.settle({ tokens: 30, costUsd: 0 });
    await h.tracker.admit('k', 'app', limits, { tokens: 970, costUsd: 0 });
  });
});
