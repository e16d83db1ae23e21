import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toAppKey } from '../../../src/auth/app-key.js';
import type { Caller } from '../../../src/auth/authenticator.js';
import { GatewayError } from '../../../src/errors/index.js';
import { LimitTracker, type Estimate, type UsageBaseline } from '../../../src/limits/index.js';
import { PriceTable, type ModelPrice } from '../../../src/metering/pricing.js';
import { Admission } from '../../../src/policy/admission.js';
import type { AppKeyRow, KeySettings } from '../../../src/storage/keys-repository.js';

const ZERO: UsageBaseline = { requests: 0, tokens: 0, costUsd: 0 };

function caller(settings: Partial<KeySettings>): Caller {
  const row: AppKeyRow = {
    id: 'key-1',
    name: 'app',
    keyHash: '0'.repeat(64),
    keyPrefix: 'oa-test',
    source: 'cli',
    createdAt: new Date(0),
    updatedAt: new Date(0),
    lastUsedAt: null,
    enabled: true,
    expiresAt: null,
    models: null,
    rpm: null,
    tpm: null,
    rpd: null,
    budgetTokens: null,
    budgetUsd: null,
    budgetPeriod: null,
    botDesc: null,
    personaMode: null,
    defaults: null,
    maxTokensCeiling: null,
    allowOrigin: null,
    endpoints: null,
    metadata: null,
    ...settings,
  };
  const key = toAppKey(row);
  return { kind: 'app_key', name: key.name, key };
}

interface Harness {
  admission: Admission;
  prices: PriceTable;
  /** How often the usage database was asked for the key's baseline. */
  loads: () => number;
}

/** Admission over a real in-memory LimitTracker whose usage database holds `baseline`. */
function harness(fallback?: ModelPrice, baseline: UsageBaseline = ZERO): Harness {
  let loads = 0;
  const tracker = new LimitTracker({
    now: () => Date.parse('2030-03-14T12:00:00.000Z'),
    loadUsage: async () => {
      loads += 1;
      return baseline;
    },
  });
  const prices = new PriceTable({}, fallback);
  return { admission: new Admission(tracker, undefined, false, prices), prices, loads: () => loads };
}

/** What the routes pass: the prompt and max_tokens priced by the same table. */
const estimateFor = (prices: PriceTable, model: string | undefined, promptTokens: number, maxTokens: number) => (): Estimate => ({
  tokens: promptTokens + maxTokens,
  costUsd: prices.cost(model, { promptTokens, completionTokens: maxTokens, cachedTokens: 0 }) ?? 0,
});

async function refusal(admit: () => unknown): Promise<GatewayError> {
  try {
    await admit();
  } catch (error) {
    assert.ok(error instanceof GatewayError, `expected a GatewayError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the request to be refused');
}

describe('Admission: USD budgets and unpriced models', () => {
  it('refuses a key with a USD budget an unpriced model before anything is reserved', async () => {
    const h = harness();
    const budgeted = caller({ budgetUsd: 5, budgetPeriod: 'month' });
    let estimated = false;
    const error = await refusal(() =>
      h.admission.admit(budgeted, 'my-local-llama', () => {
        estimated = true;
        return { tokens: 1, costUsd: 0 };
      }),
    );
    assert.equal(error.code, 'model_not_priced');
    assert.equal(error.status, 403);
    assert.equal(error.param, 'model');
    assert.match(error.message, /"my-local-llama"/);
    assert.match(error.message, /"prices"/);
    assert.match(error.message, /"fallback_price"/);
    assert.equal(estimated, false, 'no estimate for a refused request');
    assert.equal(h.loads(), 0, 'the budget was never consulted');
  });

  it('admits a priced model, a dated snapshot of one, and a model priced only in config', async () => {
    const h = harness();
    const budgeted = caller({ budgetUsd: 5 });
    for (const model of ['gpt-4o', 'gpt-4o-2024-08-06']) {
      const ticket = await h.admission.admit(budgeted, model, estimateFor(h.prices, model, 100, 100));
      ticket.refund();
    }
    const configured = new Admission(new LimitTracker({ loadUsage: async () => ZERO }), undefined, false, new PriceTable({ 'my-local-llama': { input: 0.1 } }));
    const ticket = await configured.admit(budgeted, 'my-local-llama', () => ({ tokens: 1, costUsd: 0 }));
    ticket.refund();
  });

  it('admits an unpriced model once fallback_price is set, and then counts it against the budget', async () => {
    // Spent $0.99 of $1 this month; the fallback prices the request above what is left.
    const h = harness({ input: 5, output: 15 }, { requests: 3, tokens: 0, costUsd: 0.99 });
    const budgeted = caller({ budgetUsd: 1, budgetPeriod: 'month' });
    const ticket = await h.admission.admit(budgeted, 'my-local-llama', estimateFor(h.prices, 'my-local-llama', 100, 100));
    ticket.refund();
    const error = await refusal(() => h.admission.admit(budgeted, 'my-local-llama', estimateFor(h.prices, 'my-local-llama', 1000, 1000)));
    assert.equal(error.code, 'budget_exceeded');
  });

  it('does not refuse a request without a model (a file upload, a list)', async () => {
    const h = harness();
    const budgeted = caller({ budgetUsd: 5 });
    const ticket = await h.admission.admit(budgeted, undefined, () => ({ tokens: 0, costUsd: 0 }));
    ticket.refund();
  });

  it('lets keys without a USD budget, and callers without a key, use unpriced models', async () => {
    const h = harness();
    for (const settings of [{}, { rpm: 10 }, { budgetTokens: 1000 }]) {
      const ticket = await h.admission.admit(caller(settings), 'my-local-llama', () => ({ tokens: 10, costUsd: 0 }));
      ticket.refund();
    }
    await h.admission.admit({ kind: 'anonymous', name: 'anonymous', key: undefined }, 'my-local-llama', () => ({ tokens: 0, costUsd: 0 }));
  });

  it('says a model the key may not use is not allowed, before asking whether it is priced', async () => {
    const h = harness();
    const error = await refusal(() => h.admission.admit(caller({ budgetUsd: 5, models: ['gpt-4o*'] }), 'my-local-llama', () => ({ tokens: 1, costUsd: 0 })));
    assert.equal(error.code, 'model_not_allowed');
  });
});

describe('Admission: model globs of a key', () => {
  it('matches the models of a key with globs, a 1 MB model name included', async () => {
    const h = harness();
    const limited = caller({ models: ['*mini*', 'gpt-4o'] });
    await h.admission.admit(limited, 'gpt-4o-mini', () => ({ tokens: 0, costUsd: 0 }));
    await h.admission.admit(limited, 'gpt-4o', () => ({ tokens: 0, costUsd: 0 }));
    const error = await refusal(() => h.admission.admit(limited, 'x'.repeat(1_000_000), () => ({ tokens: 0, costUsd: 0 })));
    assert.equal(error.code, 'model_not_allowed');
  });
});
