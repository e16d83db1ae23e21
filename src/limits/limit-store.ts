/**
 * What the request path needs from rate limits and budgets. `LimitTracker` is the in-memory
 * implementation for one gateway instance; a shared store (Redis) for several instances will
 * implement the same interface.
 */
import type { KeyLimits } from '../domain/key-settings.js';

export type { KeyLimits };

/** What a request may use at most, computed by the caller before it is sent. */
export interface Estimate {
  /** Prompt estimate + max_tokens. */
  tokens: number;
  /** 0 when the price of the model is unknown. */
  costUsd: number;
}

/**
 * What admit() is asked to hold. Without `exact`, `tokens` and `costUsd` are the estimate. With it, they are a
 * cheap upper bound of the estimate (the prompt's bytes, say) and `exact()` computes the estimate itself, which
 * may cost much more (tokenizing). A store holds the bound while it fits, and decides on the estimate otherwise,
 * so that every request is admitted or refused exactly as its estimate would be: see LimitTracker.
 */
export interface Demand extends Estimate {
  /** The estimate the bound stands for: at most `tokens` and `costUsd`. Called at most once, maybe never. */
  exact?(): Estimate;
}

/** Spend of one key in a period, as the usage database reports it. */
export interface UsageBaseline {
  requests: number;
  tokens: number;
  costUsd: number;
}

/** Reads a key's recorded usage since `since` (inclusive; all time when undefined). */
export type LoadUsage = (keyId: string, since: Date | undefined) => Promise<UsageBaseline>;

/**
 * An admitted request's hold on tokens and cost. Call exactly one of the two when the request
 * ends; both are idempotent and whichever comes first wins. The request itself keeps counting
 * toward rpm and rpd either way.
 */
export interface Reservation {
  /** x-ratelimit-* headers describing the key right after this request was admitted; empty without rpm and tpm. */
  readonly headers: Readonly<Record<string, string>>;
  /** Replaces the reservation by what the request really used. */
  settle(actual: { tokens: number; costUsd: number }): void;
  /** Returns the reserved tokens and cost (upstream error, nothing billed). */
  refund(): void;
  /**
   * The request ended but what it used is not known yet (a background response): the reservation
   * stays held until settled or refunded, as the request's estimate — a bound held so far is
   * replaced by it, so nothing of the request (its body) is kept alive meanwhile.
   */
  keep?(): void;
}

export interface LimitStore {
  /**
   * The reservation, or a GatewayError 429 (`rate_limit_exceeded`, `budget_exceeded`) carrying
   * Retry-After and x-ratelimit-* headers, thrown. A store that must wait (for a baseline, for a
   * shared store's answer) returns a promise that settles the same way instead; any other
   * rejection is the usage loader's error. Synchronous when it can be: most requests are.
   */
  admit(keyId: string, keyName: string, limits: KeyLimits, demand: Demand): Reservation | Promise<Reservation>;
  /**
   * Counts usage that no reservation of this instance held — a background response's, recorded
   * after its request ended (or on another instance): into the key's tpm window now and into the
   * budget periods this instance has loaded. Never refuses anything, never waits.
   */
  record(keyId: string, limits: KeyLimits, actual: Estimate): void;
  /** Drops a key's state: key deleted, limits changed, budget reset. */
  forget(keyId: string): void;
}
