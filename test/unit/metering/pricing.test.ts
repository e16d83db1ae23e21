import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config/index.js';
import { DEFAULT_PRICES, PriceTable } from '../../../src/metering/pricing.js';

const usage = (promptTokens: number, completionTokens: number, cachedTokens = 0) => ({
  promptTokens,
  completionTokens,
  cachedTokens,
});

describe('DEFAULT_PRICES', () => {
  it('holds the fact-sheet table (USD per 1M tokens)', () => {
    assert.deepEqual(DEFAULT_PRICES['gpt-4o'], { input: 2.5, cachedInput: 1.25, output: 10 });
    assert.deepEqual(DEFAULT_PRICES['gpt-4o-mini'], { input: 0.15, cachedInput: 0.075, output: 0.6 });
    assert.deepEqual(DEFAULT_PRICES['gpt-4.1'], { input: 2, cachedInput: 0.5, output: 8 });
    assert.deepEqual(DEFAULT_PRICES['gpt-4.1-mini'], { input: 0.4, cachedInput: 0.1, output: 1.6 });
    assert.deepEqual(DEFAULT_PRICES['gpt-4.1-nano'], { input: 0.1, cachedInput: 0.025, output: 0.4 });
    assert.deepEqual(DEFAULT_PRICES['o3'], { input: 2, cachedInput: 0.5, output: 8 });
    assert.deepEqual(DEFAULT_PRICES['o4-mini'], { input: 1.1, cachedInput: 0.275, output: 4.4 });
    assert.deepEqual(DEFAULT_PRICES['gpt-5'], { input: 1.25, cachedInput: 0.125, output: 10 });
    assert.deepEqual(DEFAULT_PRICES['gpt-5-mini'], { input: 0.25, cachedInput: 0.025, output: 2 });
    assert.deepEqual(DEFAULT_PRICES['gpt-5-nano'], { input: 0.05, cachedInput: 0.005, output: 0.4 });
    assert.deepEqual(DEFAULT_PRICES['text-embedding-3-small'], { input: 0.02 });
    assert.deepEqual(DEFAULT_PRICES['text-embedding-3-large'], { input: 0.13 });
    assert.deepEqual(DEFAULT_PRICES['gpt-3.5-turbo-instruct'], { input: 1.5, output: 2 });
    assert.deepEqual(DEFAULT_PRICES['gpt-realtime'], { input: 4, cachedInput: 0.4, output: 16, audioInput: 32, audioOutput: 64 });
    assert.deepEqual(DEFAULT_PRICES['gpt-realtime-mini'], { input: 0.6, cachedInput: 0.06, output: 2.4, audioInput: 10, audioOutput: 20 });
    assert.deepEqual(DEFAULT_PRICES['gpt-4o-realtime-preview'], { input: 5, cachedInput: 2.5, output: 20, audioInput: 40, audioOutput: 80 });
    assert.deepEqual(DEFAULT_PRICES['gpt-4o-mini-realtime-preview'], { input: 0.6, cachedInput: 0.3, output: 2.4, audioInput: 10, audioOutput: 20 });
    assert.deepEqual(DEFAULT_PRICES['claude-opus-4-1'], { input: 15, cachedInput: 1.5, cacheWrite: 18.75, output: 75 });
    assert.deepEqual(DEFAULT_PRICES['claude-opus-4'], { input: 15, cachedInput: 1.5, cacheWrite: 18.75, output: 75 });
    assert.deepEqual(DEFAULT_PRICES['claude-sonnet-4-5'], { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 });
    assert.deepEqual(DEFAULT_PRICES['claude-sonnet-4'], { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 });
    assert.deepEqual(DEFAULT_PRICES['claude-haiku-4-5'], { input: 1, cachedInput: 0.1, cacheWrite: 1.25, output: 5 });
    assert.deepEqual(DEFAULT_PRICES['claude-3-5-haiku'], { input: 0.8, cachedInput: 0.08, cacheWrite: 1, output: 4 });
    assert.equal(Object.keys(DEFAULT_PRICES).length, 23);
  });

  it('prices Claude cache reads at 0.1× and cache writes at 1.25× the input price', () => {
    for (const [model, price] of Object.entries(DEFAULT_PRICES)) {
      if (!model.startsWith('claude-')) continue;
      assert.ok(Math.abs(price.cachedInput! - price.input * 0.1) < 1e-12, model);
      assert.ok(Math.abs(price.cacheWrite! - price.input * 1.25) < 1e-12, model);
    }
  });

  it('cannot be changed at run time', () => {
    assert.ok(Object.isFrozen(DEFAULT_PRICES));
    for (const entry of Object.values(DEFAULT_PRICES)) assert.ok(Object.isFrozen(entry));
  });
});

describe('PriceTable.priceFor', () => {
  const table = new PriceTable();

  it('finds every default by its exact name', () => {
    for (const [model, price] of Object.entries(DEFAULT_PRICES)) assert.equal(table.priceFor(model), price, model);
  });

  it('strips a trailing date snapshot', () => {
    assert.equal(table.priceFor('gpt-4o-2024-08-06'), DEFAULT_PRICES['gpt-4o']);
    assert.equal(table.priceFor('gpt-4o-mini-2024-07-18'), DEFAULT_PRICES['gpt-4o-mini']);
    assert.equal(table.priceFor('gpt-5-2025-08-07'), DEFAULT_PRICES['gpt-5']);
    assert.equal(table.priceFor('o3-2025-04-16'), DEFAULT_PRICES['o3']);
    assert.equal(table.priceFor('gpt-4.1-nano-2025-04-14'), DEFAULT_PRICES['gpt-4.1-nano']);
  });

  it('strips an older MMDD snapshot too', () => {
    assert.equal(table.priceFor('gpt-3.5-turbo-instruct-0914'), DEFAULT_PRICES['gpt-3.5-turbo-instruct']);
  });

  it("strips Anthropic's YYYYMMDD snapshot, down to its own alias only", () => {
    assert.equal(table.priceFor('claude-sonnet-4-5-20250929'), DEFAULT_PRICES['claude-sonnet-4-5']);
    assert.equal(table.priceFor('claude-opus-4-1-20250805'), DEFAULT_PRICES['claude-opus-4-1']);
    assert.equal(table.priceFor('claude-opus-4-20250514'), DEFAULT_PRICES['claude-opus-4']);
    assert.equal(table.priceFor('claude-sonnet-4-20250514'), DEFAULT_PRICES['claude-sonnet-4']);
    assert.equal(table.priceFor('claude-haiku-4-5-20251001'), DEFAULT_PRICES['claude-haiku-4-5']);
    assert.equal(table.priceFor('claude-3-5-haiku-20241022'), DEFAULT_PRICES['claude-3-5-haiku']);
  });

  it('does not read eight digits that are no date, or a date in another place, as a snapshot', () => {
    for (const model of [
      'claude-sonnet-4-5-12345678',
      'claude-sonnet-4-5-20251329',
      'claude-sonnet-4-5-20250900',
      'claude-sonnet-4-5-2025092',
      'claude-sonnet-4-5-202509290',
      'claude-sonnet-4-5-20250929-v2',
      'claude-sonnet-4-5-x20250929',
      'claude-3-7-sonnet-20250219',
      'claude-opus-4-5-20251101',
    ]) {
      assert.equal(table.priceFor(model), undefined, model);
    }
  });

  it('never prices a model as a shorter name it starts with', () => {
    assert.notEqual(table.priceFor('gpt-4o-mini'), DEFAULT_PRICES['gpt-4o']);
    for (const model of [
      'gpt-4o-mini-search-preview',
      'gpt-4o-audio-preview',
      'gpt-4o-realtime-preview-x',
      'gpt-5-pro',
      'gpt-5.1',
      'o3-mini',
      'o3-pro-2025-06-10',
      'gpt-4o-2024-08-06-custom',
      'text-embedding-3-small-v2',
    ]) {
      assert.equal(table.priceFor(model), undefined, model);
    }
  });

  it('does not guess for unknown, fine-tuned or differently spelled models', () => {
    const models = ['deepseek-chat', 'ft:gpt-4o-mini-2024-07-18:acme::abc123', 'GPT-4o', 'openai/gpt-4o'];
    for (const model of [...models, '', '-2024-08-06']) {
      assert.equal(table.priceFor(model), undefined, model);
    }
  });

  it('answers the same after its snapshot cache has been filled and emptied', () => {
    for (let i = 0; i < 5000; i++) table.priceFor(`unknown-model-${i}-2024-01-01`);
    assert.equal(table.priceFor('gpt-4o-2024-08-06'), DEFAULT_PRICES['gpt-4o']);
    assert.equal(table.priceFor('unknown-model-1-2024-01-01'), undefined);
  });
});

describe('PriceTable overrides', () => {
  it('adds models and replaces a default entry whole', () => {
    const table = new PriceTable({
      'gpt-4o': { input: 3, output: 12 },
      'deepseek-chat': { input: 0.27, cachedInput: 0.07, output: 1.1 },
    });
    assert.deepEqual(table.priceFor('gpt-4o'), { input: 3, output: 12 });
    assert.deepEqual(table.priceFor('deepseek-chat'), { input: 0.27, cachedInput: 0.07, output: 1.1 });
    assert.equal(table.priceFor('gpt-4o-mini'), DEFAULT_PRICES['gpt-4o-mini']);
    // Without its own cachedInput, the override charges cached tokens at its input price, not the old default's.
    assert.equal(table.cost('gpt-4o', usage(1_000_000, 0, 1_000_000)), 3);
  });

  it('prices a snapshot by the override of its alias', () => {
    const table = new PriceTable({ 'gpt-4o': { input: 3, output: 12 } });
    assert.deepEqual(table.priceFor('gpt-4o-2024-11-20'), { input: 3, output: 12 });
  });

  it('lets an exact snapshot entry win over its alias', () => {
    const table = new PriceTable({ 'gpt-4o-2024-05-13': { input: 5, output: 15 } });
    assert.deepEqual(table.priceFor('gpt-4o-2024-05-13'), { input: 5, output: 15 });
    assert.equal(table.priceFor('gpt-4o-2024-08-06'), DEFAULT_PRICES['gpt-4o']);
  });

  it('changes neither the defaults nor other tables, and ignores later edits of the overrides object', () => {
    const overrides = { 'gpt-4o': { input: 3, output: 12 } };
    const table = new PriceTable(overrides);
    overrides['gpt-4o'].input = 99;
    assert.deepEqual(table.priceFor('gpt-4o'), { input: 3, output: 12 });
    assert.equal(DEFAULT_PRICES['gpt-4o']?.input, 2.5);
    assert.equal(new PriceTable().priceFor('gpt-4o'), DEFAULT_PRICES['gpt-4o']);
  });
});

describe('PriceTable.cost', () => {
  const table = new PriceTable();

  it('charges uncached input, cached input and output at their prices', () => {
    // (600 × 2.50 + 400 × 1.25 + 500 × 10) / 1e6
    assert.equal(table.cost('gpt-4o', usage(1000, 500, 400)), 0.007);
    assert.equal(table.cost('gpt-4o', usage(1_000_000, 1_000_000)), 12.5);
    const miniCost = (1000 * 0.15 + 1000 * 0.075 + 100 * 0.6) / 1e6;
    assert.equal(table.cost('gpt-4o-mini-2024-07-18', usage(2000, 100, 1000)), miniCost);
  });

  it('charges audio tokens at the audio prices, cached ones at the cached price, and falls back to the text prices without audio ones', () => {
    // gpt-realtime: 4 text + 30 audio uncached + 16 cached in, 10 text + 25 audio out.
    const expected = (4 * 4 + 30 * 32 + 16 * 0.4 + 10 * 16 + 25 * 64) / 1e6;
    assert.equal(table.cost('gpt-realtime', { promptTokens: 50, completionTokens: 35, cachedTokens: 16, audioPromptTokens: 30, audioCompletionTokens: 25 }), Math.round(expected * 1e9) / 1e9);
    // More audio than the uncached prompt is capped, never negative text.
    const capped = (34 * 32 + 16 * 0.4) / 1e6;
    assert.equal(table.cost('gpt-realtime', { promptTokens: 50, completionTokens: 0, cachedTokens: 16, audioPromptTokens: 500 }), Math.round(capped * 1e9) / 1e9);
    assert.equal(table.cost('gpt-4o', { promptTokens: 1000, completionTokens: 100, cachedTokens: 0, audioPromptTokens: 1000, audioCompletionTokens: 100 }), table.cost('gpt-4o', usage(1000, 100)));
  });

  it('charges cache writes at the cache-write price, beside cache reads, as parts of the prompt', () => {
    // claude-sonnet-4-5: 100 uncached at 3, 2000 read at 0.3, 1000 written at 3.75, 50 out at 15.
    const usage = { promptTokens: 3100, completionTokens: 50, cachedTokens: 2000, cacheWriteTokens: 1000 };
    assert.equal(table.cost('claude-sonnet-4-5-20250929', usage), Math.round(((100 * 3 + 2000 * 0.3 + 1000 * 3.75 + 50 * 15) / 1e6) * 1e9) / 1e9);
    // More reads and writes than the prompt are capped; never a negative uncached part.
    assert.equal(table.cost('claude-sonnet-4-5', { promptTokens: 1000, completionTokens: 0, cachedTokens: 600, cacheWriteTokens: 5000 }), Math.round(((600 * 0.3 + 400 * 3.75) / 1e6) * 1e9) / 1e9);
  });

  it('charges cache writes at the input price when the model has no cache-write price (OpenAI\'s caching is free to write)', () => {
    assert.equal(table.cost('gpt-4o', { promptTokens: 1000, completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 1000 }), table.cost('gpt-4o', usage(1000, 0)));
  });

  it('takes cache_write_input in config prices', (t) => {
    const cwd = mkdtempSync(join(tmpdir(), 'openai-api-cache-write-price-'));
    t.after(() => rmSync(cwd, { recursive: true, force: true }));
    const config = loadConfig({ env: { PRICES: '{"my-claude": {"input": 2, "cached_input": 0.2, "cache_write_input": 2.5, "output": 10}}' }, cwd });
    assert.deepEqual(config.prices['my-claude'], { input: 2, cachedInput: 0.2, cacheWrite: 2.5, output: 10 });
    assert.equal(new PriceTable(config.prices).cost('my-claude', { promptTokens: 1_000_000, completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 1_000_000 }), 2.5);
  });

  it('charges cached tokens at the input price when the model has no cached price', () => {
    assert.equal(table.cost('gpt-3.5-turbo-instruct', usage(1000, 0, 1000)), 0.0015);
  });

  it('charges nothing for output when the model has no output price', () => {
    assert.equal(table.cost('text-embedding-3-small', usage(1_000_000, 50)), 0.02);
  });

  it('rounds to the nano-dollar', () => {
    assert.equal(table.cost('gpt-5-nano', usage(1, 0, 1)), 5e-9);
    assert.equal(table.cost('gpt-4.1-nano', usage(3, 0)), 3e-7);
    const tiny = new PriceTable({ cheap: { input: 0.0004 } });
    assert.equal(tiny.cost('cheap', usage(1, 0)), 0);
  });

  it('is 0 for no tokens', () => {
    assert.equal(table.cost('gpt-5', usage(0, 0)), 0);
  });

  it('is null for an unknown model or none, never a guess', () => {
    assert.equal(table.cost('deepseek-chat', usage(1000, 1000)), null);
    assert.equal(table.cost('gpt-4o-mini-search-preview', usage(1000, 1000)), null);
    assert.equal(table.cost(undefined, usage(1000, 1000)), null);
  });

  it('never goes negative on inconsistent usage: cached is capped at the prompt, bad counts are 0', () => {
    assert.equal(table.cost('gpt-4o', usage(100, 0, 1000)), (100 * 1.25) / 1e6);
    assert.equal(table.cost('gpt-4o', usage(-5, Number.NaN, -1)), 0);
    assert.equal(table.cost('gpt-4o', usage(Number.POSITIVE_INFINITY, 10)), (10 * 10) / 1e6);
  });
});

describe('PriceTable fallback price', () => {
  const fallback = { input: 5, cachedInput: 2.5, output: 15 };
  const table = new PriceTable({ 'deepseek-chat': { input: 0.27, output: 1.1 } }, fallback);

  it('prices every model the table does not list, so its usage records get a cost', () => {
    assert.deepEqual(table.priceFor('my-local-llama'), fallback);
    assert.deepEqual(table.priceFor('unknown-model-1-2024-01-01'), fallback);
    // (600 × 5 + 400 × 2.5 + 500 × 15) / 1e6
    assert.equal(table.cost('my-local-llama', usage(1000, 500, 400)), 0.0115);
  });

  it('never replaces a listed price: defaults, overrides and snapshots of either keep their own', () => {
    assert.equal(table.priceFor('gpt-4o'), DEFAULT_PRICES['gpt-4o']);
    assert.equal(table.priceFor('gpt-4o-2024-08-06'), DEFAULT_PRICES['gpt-4o']);
    assert.deepEqual(table.priceFor('deepseek-chat'), { input: 0.27, output: 1.1 });
  });

  it('still leaves a request without a model unpriced', () => {
    assert.equal(table.cost(undefined, usage(1000, 1000)), null);
  });

  it('ignores later edits of the object it was given', () => {
    const given = { input: 1 };
    const own = new PriceTable({}, given);
    given.input = 99;
    assert.deepEqual(own.priceFor('anything'), { input: 1 });
  });

  it('comes from fallback_price in config.json or FALLBACK_PRICE, in the shape of one prices entry', (t) => {
    const cwd = mkdtempSync(join(tmpdir(), 'openai-api-fallback-price-'));
    t.after(() => rmSync(cwd, { recursive: true, force: true }));
    const fromEnv = loadConfig({ env: { FALLBACK_PRICE: '{"input": 5, "cached_input": 2.5, "output": 15}' }, cwd });
    assert.deepEqual(new PriceTable(fromEnv.prices, fromEnv.fallbackPrice).priceFor('my-local-llama'), fallback);
    writeFileSync(join(cwd, 'config.json'), JSON.stringify({ fallback_price: { input: 1, output: 2 } }));
    const fromFile = loadConfig({ env: {}, cwd });
    // 1M prompt tokens at 1 + 1M completion tokens at 2.
    assert.equal(new PriceTable(fromFile.prices, fromFile.fallbackPrice).cost('my-local-llama', usage(1_000_000, 1_000_000)), 3);
    rmSync(join(cwd, 'config.json'));
    const unset = loadConfig({ env: {}, cwd });
    assert.equal(unset.fallbackPrice, undefined);
    assert.equal(new PriceTable(unset.prices, unset.fallbackPrice).priceFor('my-local-llama'), undefined);
    assert.throws(() => loadConfig({ env: { FALLBACK_PRICE: '{"input": -1}' }, cwd }), (error: unknown) => error instanceof ConfigError && error.message.includes('FALLBACK_PRICE (env var)'));
    assert.throws(() => loadConfig({ env: { FALLBACK_PRICE: '{"input": 1, "ouput": 2}' }, cwd }), ConfigError);
  });
});
