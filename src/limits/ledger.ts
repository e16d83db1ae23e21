import { periodBounds, type PeriodKind } from './periods.js';
import type { UsageBaseline } from './limit-store.js';

/**
 * A key's usage in one UTC period: the database's baseline at first sight plus what this
 * instance admitted and settled since. Requests count when admitted; tokens and cost count
 * when settled, and are held as reservations while requests are in flight.
 */
export class Ledger {
  readonly kind: PeriodKind;
  /** Exclusive; Infinity for 'total'. A ledger past its end is stale and replaced by a fresh load. */
  readonly end: number;
  requests: number;
  tokens: number;
  costUsd: number;
  reservedTokens = 0;
  reservedUsd = 0;
  inFlight = 0;

  constructor(kind: PeriodKind, end: number, baseline: UsageBaseline) {
    this.kind = kind;
    this.end = end;
    this.requests = nonNegative(baseline.requests);
    this.tokens = nonNegative(baseline.tokens);
    this.costUsd = nonNegative(baseline.costUsd);
  }

  reserve(tokens: number, costUsd: number): void {
    this.requests += 1;
    this.reservedTokens += tokens;
    this.reservedUsd += costUsd;
    this.inFlight += 1;
  }

  release(tokens: number, costUsd: number): void {
    this.inFlight -= 1;
    if (this.inFlight === 0) {
      // Floating-point sums of costs need not return to exactly 0.
      this.reservedTokens = 0;
      this.reservedUsd = 0;
    } else {
      this.reservedTokens -= tokens;
      this.reservedUsd -= costUsd;
    }
  }

  /** Changes an in-flight reservation by a difference (a bound replaced by its estimate). */
  adjust(tokens: number, costUsd: number): void {
    this.reservedTokens += tokens;
    this.reservedUsd += costUsd;
  }

  record(tokens: number, costUsd: number): void {
    this.tokens += tokens;
    this.costUsd += costUsd;
  }
}

/** Reads the baseline of `kind`'s period containing `now` and wraps it in a ledger. */
export async function loadLedger(
  kind: PeriodKind,
  now: number,
  keyId: string,
  load: (keyId: string, since: Date | undefined) => Promise<UsageBaseline>,
): Promise<Ledger> {
  const { start, end } = periodBounds(kind, now);
  const baseline = await load(keyId, start === undefined ? undefined : new Date(start));
  return new Ledger(kind, end, baseline);
}

/** Non-negative finite number, else 0: estimates and database sums are not trusted to be clean. */
export function nonNegative(value: number): number {
  return value > 0 && Number.isFinite(value) ? value : 0;
}
