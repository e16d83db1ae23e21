/**
 * UTC calendar periods for rpd and budgets. A period is [start, end) in ms since the epoch;
 * `start` is undefined for 'total', which never ends.
 */
import type { BudgetPeriod } from '../domain/key-settings.js';

/** A budget's period: the domain's BudgetPeriod under the name the ledgers use. */
export type PeriodKind = BudgetPeriod;

export interface PeriodBounds {
  readonly start: number | undefined;
  readonly end: number;
}

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

const TOTAL: PeriodBounds = Object.freeze({ start: undefined, end: Number.POSITIVE_INFINITY });

/** The period of `kind` that contains `now`. */
export function periodBounds(kind: PeriodKind, now: number): PeriodBounds {
  if (kind === 'total') return TOTAL;
  if (kind === 'day') {
    const start = Math.floor(now / DAY_MS) * DAY_MS;
    return { start, end: start + DAY_MS };
  }
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  // Date.UTC carries month 12 into January of the next year.
  return { start: Date.UTC(year, month, 1), end: Date.UTC(year, month + 1, 1) };
}

/** How a period reads in messages: "per day (UTC)". */
export function describePeriod(kind: PeriodKind): string {
  return kind === 'total' ? 'in total' : `per ${kind} (UTC)`;
}
