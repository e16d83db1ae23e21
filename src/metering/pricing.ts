/**
 * List prices in USD per 1M tokens and the cost of one request's usage. The defaults go stale (models are renamed,
 * repriced and shut down), so operators override them in config; a model we have no price for costs `null`,
 * never a guess — unless the operator sets `fallback_price`, the price they choose for every unlisted model (so a
 * USD budget also counts models nobody priced; see policy/admission.ts).
 */

import type { ModelPrice } from '../domain/model-price.js';

export type { ModelPrice };

/**
 * The token counts a cost is computed from: `cachedTokens` is the part of `promptTokens` served
 * from cache (priced `cachedInput`, audio or not), `cacheWriteTokens` the part written to the
 * cache (priced `cacheWrite`), `audioPromptTokens` the uncached audio part of it,
 * `audioCompletionTokens` the audio part of `completionTokens`.
 */
export interface CostUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  cacheWriteTokens?: number;
  audioPromptTokens?: number;
  audioCompletionTokens?: number;
}

function price(input: number, cachedInput?: number, output?: number, audio?: { input: number; output: number }): Readonly<ModelPrice> {
  const entry: ModelPrice = { input };
  if (cachedInput !== undefined) entry.cachedInput = cachedInput;
  if (output !== undefined) entry.output = output;
  if (audio !== undefined) {
    entry.audioInput = audio.input;
    entry.audioOutput = audio.output;
  }
  return Object.freeze(entry);
}

/** A model that charges cache writes apart (Anthropic): input, cache read, cache write, output. */
function cachingPrice(input: number, cachedInput: number, cacheWrite: number, output: number): Readonly<ModelPrice> {
  return Object.freeze({ input, cachedInput, cacheWrite, output });
}

/**
 * Standard (not Batch) prices from our fact sheet, openai-protocol.md §11: third-party copies of
 * developers.openai.com/api/docs/pricing cross-checked against each other (deploybase.ai, Mar 2026; tokenmath.io,
 * 2026-06-21; a repository table verified against the official page on 2026-03-09). Not read from the official
 * page itself. Several of these models are announced for shutdown between 2026-10 and 2027-01.
 */
export const DEFAULT_PRICES: Readonly<Record<string, Readonly<ModelPrice>>> = Object.freeze({
  'gpt-4o': price(2.5, 1.25, 10),
  'gpt-4o-mini': price(0.15, 0.075, 0.6),
  'gpt-4.1': price(2, 0.5, 8),
  'gpt-4.1-mini': price(0.4, 0.1, 1.6),
  'gpt-4.1-nano': price(0.1, 0.025, 0.4),
  o3: price(2, 0.5, 8),
  'o4-mini': price(1.1, 0.275, 4.4),
  'gpt-5': price(1.25, 0.125, 10),
  'gpt-5-mini': price(0.25, 0.025, 2),
  'gpt-5-nano': price(0.05, 0.005, 0.4),
  'text-embedding-3-small': price(0.02),
  'text-embedding-3-large': price(0.13),
  'gpt-3.5-turbo-instruct': price(1.5, undefined, 2),
  // Realtime: text and audio tokens priced apart; cached input (text or audio) at one price.
  // From OpenAI's pricing page as of 2025-09 (gpt-realtime GA) [verify before relying on them].
  'gpt-realtime': price(4, 0.4, 16, { input: 32, output: 64 }),
  'gpt-realtime-mini': price(0.6, 0.06, 2.4, { input: 10, output: 20 }),
  'gpt-4o-realtime-preview': price(5, 2.5, 20, { input: 40, output: 80 }),
  'gpt-4o-mini-realtime-preview': price(0.6, 0.3, 2.4, { input: 10, output: 20 }),
  // Anthropic: cache reads at 0.1× input, cache writes (5-minute cache) at 1.25× input, from
  // Anthropic's pricing page as of 2025-10 [verify before relying on them]. Not modelled: 1-hour
  // cache writes (2× input) and Sonnet's long-context rates (prompts over 200K tokens).
  'claude-opus-4-1': cachingPrice(15, 1.5, 18.75, 75),
  'claude-opus-4': cachingPrice(15, 1.5, 18.75, 75),
  'claude-sonnet-4-5': cachingPrice(3, 0.3, 3.75, 15),
  'claude-sonnet-4': cachingPrice(3, 0.3, 3.75, 15),
  'claude-haiku-4-5': cachingPrice(1, 0.1, 1.25, 5),
  'claude-3-5-haiku': cachingPrice(0.8, 0.08, 1, 4),
});

/**
 * A dated snapshot suffix: `-2024-08-06` (OpenAI's current style), `-20250929` (Anthropic's, as in
 * claude-sonnet-4-5-20250929: a 20YY date with a real month and day, so a build number of eight digits
 * does not count) or `-0914` (older MMDD style, as in gpt-3.5-turbo-instruct-0914). Only the suffix goes:
 * `gpt-4o-mini-2024-07-18` becomes `gpt-4o-mini`, never `gpt-4o`. A snapshot priced differently from its
 * alias (gpt-4o-2024-05-13 was) needs its own entry, which wins.
 */
const SNAPSHOT_SUFFIX = /-(?:\d{4}-\d{2}-\d{2}|20\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])|(?:0[1-9]|1[0-2])\d{2})$/;

/** Model names come from callers, so the cache of snapshot lookups is bounded. */
const SNAPSHOT_CACHE_LIMIT = 1024;

/** Cost is reported to the nano-dollar: finer digits are floating-point noise. */
const COST_SCALE = 1e9;

/** Token counts come from upstream JSON: anything but a non-negative finite number counts as 0. */
function tokens(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0;
}

/** Prices by model name: config overrides over DEFAULT_PRICES, then the fallback price if one is set. */
export class PriceTable {
  private readonly prices: ReadonlyMap<string, Readonly<ModelPrice>>;
  private readonly fallback: Readonly<ModelPrice> | undefined;
  /** Names that missed the exact lookup → their snapshot's price, or null when there is none. */
  private readonly snapshots = new Map<string, Readonly<ModelPrice> | null>();

  /** An override replaces the whole default entry of its model, so no field silently keeps a stale default. */
  constructor(overrides: Readonly<Record<string, ModelPrice>> = {}, fallback?: ModelPrice) {
    const merged = new Map<string, Readonly<ModelPrice>>(Object.entries(DEFAULT_PRICES));
    for (const [model, override] of Object.entries(overrides)) merged.set(model, Object.freeze({ ...override }));
    this.prices = merged;
    this.fallback = fallback === undefined ? undefined : Object.freeze({ ...fallback });
  }

  /**
   * The price of `model` by its exact name, else by its name without a date snapshot (no looser match), else the
   * fallback price; undefined when none applies.
   */
  priceFor(model: string): Readonly<ModelPrice> | undefined {
    const exact = this.prices.get(model);
    if (exact !== undefined) return exact;
    let snapshot = this.snapshots.get(model);
    if (snapshot === undefined) {
      const alias = model.replace(SNAPSHOT_SUFFIX, '');
      snapshot = (alias !== model ? this.prices.get(alias) : undefined) ?? null;
      if (this.snapshots.size >= SNAPSHOT_CACHE_LIMIT) this.snapshots.clear();
      this.snapshots.set(model, snapshot);
    }
    return snapshot ?? this.fallback;
  }

  /** USD for `usage` on `model`, rounded to 1e-9; null when the model is unknown or has no price (and no fallback). */
  cost(model: string | undefined, usage: CostUsage): number | null {
    if (model === undefined) return null;
    const entry = this.priceFor(model);
    if (entry === undefined) return null;
    const prompt = tokens(usage.promptTokens);
    // Cached tokens are part of the prompt; more than the prompt would be an upstream bug, not a discount.
    const cached = Math.min(tokens(usage.cachedTokens), prompt);
    // Cache writes are part of the prompt too (Anthropic), beside the reads.
    const written = Math.min(tokens(usage.cacheWriteTokens ?? 0), prompt - cached);
    const audioIn = Math.min(tokens(usage.audioPromptTokens ?? 0), prompt - cached - written);
    const completion = tokens(usage.completionTokens);
    const audioOut = Math.min(tokens(usage.audioCompletionTokens ?? 0), completion);
    const output = entry.output ?? 0;
    // tokens × USD per 1M tokens = millionths of a dollar.
    const microUsd =
      (prompt - cached - written - audioIn) * entry.input +
      audioIn * (entry.audioInput ?? entry.input) +
      cached * (entry.cachedInput ?? entry.input) +
      written * (entry.cacheWrite ?? entry.input) +
      (completion - audioOut) * output +
      audioOut * (entry.audioOutput ?? output);
    return Math.round((microUsd / 1e6) * COST_SCALE) / COST_SCALE;
  }
}
