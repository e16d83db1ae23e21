/**
 * What the request path needs from rate limits and budgets. `LimitTracker` is the in-memory
 * implementation for one gateway instance; a shared store (Redis) for several instances will
 * implement the same interface.
 */

/** A key's limits; null or undefined means unlimited. */
export interface KeyLimits {
  rpm?: number | null;
  tpm?: number | null;
  rpd?: number | null;
  budgetTokens?: number | null;
  budgetUsd?: number | null;
  /** Defaults to 'total' when a budget is set without a period. */
  budgetPeriod?: 'day' | 'month' | 'total' | null;
}

/** What a request may use at most, computed by the caller before it is sent. */
export interface Estimate {
  /** Prompt estimate + max_tokens. */
  tokens: number;
  /** 0 when the price of the model is unknown. */
  costUsd: number;
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
  /** Replaces the reservation by what the request really used. */
  settle(actual: { tokens: number; costUsd: number }): void;
  /** Returns the reserved tokens and cost (upstream error, nothing billed). */
  refund(): void;
}

export interface LimitStore {
  /**
   * Resolves with a reservation, or rejects with a GatewayError 429 (`rate_limit_exceeded`,
   * `budget_exceeded`) carrying Retry-After and x-ratelimit-* headers. Any other rejection is
   * the usage loader's error.
   */
  admit(keyId: string, keyName: string, limits: KeyLimits, estimate: Estimate): Promise<Reservation>;
  /** x-ratelimit-* headers for a successful response; empty when the key has neither rpm nor tpm. */
  headers(keyId: string, limits: KeyLimits): Readonly<Record<string, string>>;
  /** Drops a key's state: key deleted, limits changed, budget reset. */
  forget(keyId: string): void;
}
