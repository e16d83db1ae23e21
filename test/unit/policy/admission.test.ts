import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { toAppKey } from '../../../src/auth/app-key.js';
import type { Caller } from '../../../src/auth/authenticator.js';
import { GatewayError } from '../../../src/errors/index.js';
import { LimitTracker, type Estimate, type UsageBaseline } from '../../../src/limits/index.js';
import { requestedMaxTokens } from '../../../src/metering/estimate-usage.js';
import { PriceTable, type ModelPrice } from '../../../src/metering/pricing.js';
import { estimatePromptTokens } from '../../../src/metering/token-estimate.js';
import { Admission, type Ticket } from '../../../src/policy/admission.js';
import type { KeySettings } from '../../../src/domain/key-settings.js';
import type { AppKeyRow } from '../../../src/storage/keys-repository.js';

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
    memory: null,
    memoryMaxTokens: null,
    memoryMaxTurns: null,
    memoryTtl: null,
    cacheTtl: null,
    cacheGroup: null,
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

/** What the routes computed before the byte bound: the tokenizer's estimate of the prompt and max_tokens, priced. */
const tokenizerEstimate = (prices: PriceTable, model: string, body: unknown) => (): Estimate => {
  const prompt = estimatePromptTokens('chat', body, model);
  const completion = requestedMaxTokens(body);
  return { tokens: prompt + completion, costUsd: prices.cost(model, { promptTokens: prompt, completionTokens: completion, cachedTokens: 0 }) ?? 0 };
};

const chat = (content: string, maxTokens: number, model = 'gpt-4o') => ({ model, messages: [{ role: 'user', content }], max_tokens: maxTokens });

/** A tracker already holding the key's baseline, so that admission decides on the spot. */
async function loaded(limits: Partial<KeySettings>, prices = new PriceTable()): Promise<{ admission: Admission; tracker: LimitTracker; key: Caller }> {
  const tracker = new LimitTracker({ now: () => Date.parse('2030-03-14T12:00:00.000Z'), loadUsage: async () => ZERO });
  const admission = new Admission(tracker, undefined, false, prices);
  const key = caller(limits);
  (await admission.admitPrompt(key, 'gpt-4o', 'chat', chat('', 0))).refund();
  return { admission, tracker, key };
}

describe('Admission: the byte bound', () => {
  it('admits without a promise: no key, a key without limits, and a key whose baseline is loaded', async () => {
    const h = harness();
    const anonymous: Caller = { kind: 'anonymous', name: 'anonymous', key: undefined };
    const free = h.admission.admitPrompt(anonymous, 'gpt-4o', 'chat', chat('hi', 10));
    assert.equal(free, h.admission.admitPrompt(caller({}), 'gpt-4o', 'chat', chat('hi', 10)), 'one shared ticket');
    assert.equal(typeof (free as { then?: unknown }).then, 'undefined');
    const { admission, key } = await loaded({ rpm: 100, tpm: 100_000, budgetUsd: 100 });
    const ticket = admission.admitPrompt(key, 'gpt-4o', 'chat', chat('hello', 10));
    assert.equal(typeof (ticket as { then?: unknown }).then, 'undefined');
    assert.equal((ticket as Ticket).headers['x-ratelimit-remaining-requests'], '98', 'the request that loaded the baseline counts too');
  });

  it('holds the bound while it fits, and the estimate once it does not', async () => {
    const body = chat('hello', 10);
    // Bound: 3 (primer) + 3 (message) + 4 ("user") + 5 ("hello") + 10; the estimate counts "user" and "hello" as one token each.
    const bound = 25;
    const estimate = tokenizerEstimate(new PriceTable(), 'gpt-4o', body)().tokens;
    assert.equal(estimate, 18);

    const far = await loaded({ tpm: 1000 });
    const held = (await far.admission.admitPrompt(far.key, 'gpt-4o', 'chat', body)) as Ticket;
    assert.equal(held.headers['x-ratelimit-remaining-tokens'], String(1000 - bound));

    const near = await loaded({ tpm: estimate });
    const exact = (await near.admission.admitPrompt(near.key, 'gpt-4o', 'chat', body)) as Ticket;
    assert.equal(exact.headers['x-ratelimit-remaining-tokens'], '0', 'admitted on its estimate, which fits exactly');
    const refused = await refusal(() => near.admission.admitPrompt(near.key, 'gpt-4o', 'chat', chat('', 1)));
    assert.equal(refused.code, 'rate_limit_exceeded');
  });

  it('replaces the bounds held in flight by their estimates before refusing anyone', async () => {
    const body = chat('hello', 10);
    const { admission, tracker, key } = await loaded({ tpm: 40 });
    const first = (await admission.admitPrompt(key, 'gpt-4o', 'chat', body)) as Ticket; // holds 25 of 40
    assert.equal(first.headers['x-ratelimit-remaining-tokens'], '15');
    // 25 + 18 > 40, but 18 + 18 <= 40: admitted as if both had been estimated.
    const second = (await admission.admitPrompt(key, 'gpt-4o', 'chat', body)) as Ticket;
    assert.equal(second.headers['x-ratelimit-remaining-tokens'], '4');
    second.settle({ tokens: 12, costUsd: 0 });
    first.refund();
    assert.equal(tracker.headers(key.key!.id, key.key!.limits)['x-ratelimit-remaining-tokens'], '28');
  });

  it('turns a failing baseline load into storage_unavailable, or a free pass with fail_open', async () => {
    const failing = new LimitTracker({ loadUsage: async () => Promise.reject(new Error('database down')) });
    const key = caller({ budgetTokens: 1000 });
    const closed = await refusal(() => new Admission(failing, undefined, false, new PriceTable()).admitPrompt(key, 'gpt-4o', 'chat', chat('hello', 10)));
    assert.equal(closed.code, 'storage_unavailable');
    const open = await new Admission(failing, undefined, true, new PriceTable()).admitPrompt(key, 'gpt-4o', 'chat', chat('hello', 10));
    assert.deepEqual(open.headers, {});
  });
});

describe('Admission: the byte bound decides as the tokenizer would', () => {
  const NOON = Date.parse('2030-03-14T12:00:00.000Z');
  const PRICES = new PriceTable({ 'gpt-4': { input: 30, output: 60 } });
  const text = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 120 }),
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.array(fc.constantFrom('the ', 'token ', 'Straße ', '東京 ', '😀', '{"a":1}', '\n', '12345', "don't "), { maxLength: 60 }).map((parts) => parts.join('')),
  );
  const step = fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('admit' as const), contents: fc.array(text, { minLength: 1, maxLength: 3 }), maxTokens: fc.integer({ min: 0, max: 300 }), model: fc.constantFrom('gpt-4o', 'gpt-4') }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('end' as const), pick: fc.nat(), used: fc.integer({ min: 0, max: 400 }), refund: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 40_000 }) }) },
  );
  /** Either limit absent or around the size of a few prompts; a USD budget half a nano-dollar off the grid costs are rounded to. */
  const limits = fc.record({
    rpm: fc.option(fc.integer({ min: 1, max: 30 }), { freq: 3 }),
    tpm: fc.option(fc.integer({ min: 1, max: 6000 })),
    budgetTokens: fc.option(fc.integer({ min: 1, max: 12_000 })),
    budgetUsd: fc.option(fc.integer({ min: 0, max: 30_000_000 }).map((nano) => (nano + 0.5) / 1e9)),
    budgetPeriod: fc.constantFrom('day' as const, 'month' as const, 'total' as const, null),
  });
  const baseline = fc.record({ requests: fc.nat(100), tokens: fc.nat(6000), costUsd: fc.integer({ min: 0, max: 20_000_000 }).map((nano) => nano / 1e9) });

  /** How one admission went: the ticket, or the refusal as the client sees it. */
  async function outcome(admit: () => Ticket | Promise<Ticket>): Promise<{ ticket: Ticket } | { code: string; message: string; headers: unknown }> {
    try {
      return { ticket: await admit() };
    } catch (error) {
      assert.ok(error instanceof GatewayError, String(error));
      return { code: error.code, message: error.message, headers: error.headers };
    }
  }

  it('admits and refuses every request as the tokenizer estimate does, with the same 429, on random prompts and limits', async () => {
    await fc.assert(
      fc.asyncProperty(limits, baseline, fc.array(step, { maxLength: 60 }), async (settings, usage, steps) => {
        let now = NOON;
        const tracker = (): LimitTracker => new LimitTracker({ now: () => now, loadUsage: async () => usage });
        const [before, after] = [tracker(), tracker()];
        const estimated = new Admission(before, undefined, false, PRICES);
        const bounded = new Admission(after, undefined, false, PRICES);
        const key = caller(settings);
        const inFlight: Array<[Ticket, Ticket]> = [];
        for (const next of steps) {
          if (next.op === 'wait') {
            now += next.ms;
          } else if (next.op === 'end') {
            if (inFlight.length === 0) continue;
            const [old, bound] = inFlight.splice(next.pick % inFlight.length, 1)[0]!;
            const actual = { tokens: next.used, costUsd: PRICES.cost('gpt-4o', { promptTokens: next.used, completionTokens: 0, cachedTokens: 0 }) ?? 0 };
            for (const ticket of [old, bound]) {
              if (next.refund) ticket.refund();
              else ticket.settle(actual);
            }
          } else {
            const body = { model: next.model, messages: next.contents.map((content) => ({ role: 'user', content })), max_tokens: next.maxTokens };
            const old = await outcome(() => estimated.admit(key, next.model, tokenizerEstimate(PRICES, next.model, body)));
            const bound = await outcome(() => bounded.admitPrompt(key, next.model, 'chat', body));
            if ('ticket' in old && 'ticket' in bound) {
              const { 'x-ratelimit-remaining-tokens': oldLeft, ...oldRest } = old.ticket.headers;
              const { 'x-ratelimit-remaining-tokens': boundLeft, ...boundRest } = bound.ticket.headers;
              assert.deepEqual(boundRest, oldRest);
              // In flight, a bound holds at least the estimate: the key shows no more room than before.
              assert.ok(Number(boundLeft ?? 0) <= Number(oldLeft ?? 0));
              inFlight.push([old.ticket, bound.ticket]);
            } else {
              assert.deepEqual(bound, old);
            }
          }
        }
        for (const [old, bound] of inFlight) {
          old.refund();
          bound.refund();
        }
        const limitsOf = key.key!.limits;
        assert.deepEqual(after.headers(key.key!.id, limitsOf), before.headers(key.key!.id, limitsOf), 'the same state once nothing is in flight');
      }),
      { numRuns: 300 },
    );
  });
});
