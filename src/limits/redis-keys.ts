/**
 * Pure parts of the shared limit store: Redis key names, script arguments and replies
 * (the layout is described in redis-scripts.ts). Property-tested without a server.
 */
import { budgetPeriod } from './key-state.js';
import type { KeyLimits } from './limit-store.js';
import { DAY_MS, periodBounds, type PeriodKind } from './periods.js';

/** The order of the ledgers in the scripts' KEYS and in a "seed it" reply (1-based there). */
export const LEDGER_KINDS: readonly PeriodKind[] = ['day', 'month', 'total'];

/** A day or month ledger outlives its period by this long, for requests that end after midnight. */
const PERIOD_GRACE_MS = 3_600_000;
/** The lifetime ledger of a key that nobody uses expires after this long, refreshed by each admission; then it is read from the database again. */
export const TOTAL_LEDGER_TTL_MS = 35 * DAY_MS;

export interface KeyNames {
  requests: string;
  tokens: string;
  tokenAmounts: string;
  holds: string;
  holdAmounts: string;
  /** The day, month and total ledgers of the periods containing `now`, in LEDGER_KINDS order. */
  ledgers: [string, string, string];
}

/** Every Redis key (before the prefix) of app key `keyId`, for the periods containing `now` (the caller's clock). */
export function keyNames(keyId: string, now: number): KeyNames {
  const base = `l:{${keyId}}:`;
  const date = new Date(now);
  return {
    requests: `${base}r`,
    tokens: `${base}t`,
    tokenAmounts: `${base}ta`,
    holds: `${base}h`,
    holdAmounts: `${base}hv`,
    ledgers: [`${base}d:${Math.floor(now / DAY_MS)}`, `${base}m:${date.getUTCFullYear() * 12 + date.getUTCMonth()}`, `${base}a`],
  };
}

/** When a seeded ledger expires: its period's end plus a grace hour, or (total) 0 for a sliding TTL. */
export function ledgerExpiry(kind: PeriodKind, now: number): number {
  return kind === 'total' ? 0 : periodBounds(kind, now).end + PERIOD_GRACE_MS;
}

/** Dollars as whole nanodollars, the unit Redis counts in: costs are whole nanodollars already (metering/pricing.ts). */
export function toNano(usd: number): number {
  return usd > 0 && Number.isFinite(usd) ? Math.round(usd * 1e9) : 0;
}

/** Tokens as the whole number Redis counts: a fraction rounds up, so nothing is under-held. */
export function wholeTokens(tokens: number): number {
  return tokens > 0 && Number.isFinite(tokens) ? Math.ceil(tokens) : 0;
}

function limit(value: number | null | undefined): string {
  return value == null ? '-1' : String(Math.max(0, Math.floor(value)));
}

/** ADMIT_SCRIPT's ARGV. Budgets: tokens as given, USD in nanodollars; an unset limit is -1. */
export function admitArgs(id: string, limits: KeyLimits, tokens: number, nano: number, holdMs: number): string[] {
  const period = budgetPeriod(limits);
  return [
    id,
    limit(limits.rpm),
    limit(limits.tpm),
    limit(limits.rpd),
    limit(limits.budgetTokens),
    limits.budgetUsd == null ? '-1' : String(toNano(limits.budgetUsd)),
    String(period === undefined ? 0 : LEDGER_KINDS.indexOf(period) + 1),
    String(tokens),
    String(nano),
    String(Math.round(holdMs)),
    String(TOTAL_LEDGER_TTL_MS),
  ];
}

/** ADMIT_SCRIPT's KEYS. */
export function admitKeys(names: KeyNames): string[] {
  return [names.requests, names.tokens, names.tokenAmounts, names.holds, names.holdAmounts, ...names.ledgers];
}

/** RELEASE_SCRIPT's KEYS (RECORD_SCRIPT's without the holds). */
export function releaseKeys(names: KeyNames): string[] {
  return [names.tokens, names.tokenAmounts, names.holds, names.holdAmounts, ...names.ledgers];
}

export function recordKeys(names: KeyNames): string[] {
  return [names.tokens, names.tokenAmounts, ...names.ledgers];
}

/** ADMIT_SCRIPT's answer, decoded. */
export type AdmitReply =
  | { status: 'seed'; period: PeriodKind }
  | {
      status: 'admitted' | 'refused';
      /** Redis's clock, ms since the epoch. */
      now: number;
      requests: number;
      lastRequest: number;
      /** The admit time whose expiry frees a request slot (refused on rpm), else 0. */
      requestAt: number;
      tokensUsed: number;
      lastTokens: number;
      /** The admit time whose expiry frees enough tokens (refused on tpm), else 0. */
      tokensAt: number;
      today: number;
      spentTokens: number;
      spentNano: number;
      heldTokens: number;
      heldNano: number;
    };

export function decodeAdmit(reply: unknown): AdmitReply {
  if (!Array.isArray(reply) || reply.some((value) => typeof value !== 'number')) throw new Error(`unexpected reply from the admit script: ${JSON.stringify(reply)}`);
  const values = reply as number[];
  if (values[0] === 2) {
    const period = LEDGER_KINDS[values[1]! - 1];
    if (period === undefined) throw new Error(`unexpected reply from the admit script: ${JSON.stringify(reply)}`);
    return { status: 'seed', period };
  }
  if (values.length !== 13 || (values[0] !== 0 && values[0] !== 1)) throw new Error(`unexpected reply from the admit script: ${JSON.stringify(reply)}`);
  const [, now, requests, lastRequest, requestAt, tokensUsed, lastTokens, tokensAt, today, spentTokens, spentNano, heldTokens, heldNano] = values as [number, ...number[]];
  return {
    status: values[0] === 0 ? 'admitted' : 'refused',
    now: now!,
    requests: requests!,
    lastRequest: lastRequest!,
    requestAt: requestAt!,
    tokensUsed: tokensUsed!,
    lastTokens: lastTokens!,
    tokensAt: tokensAt!,
    today: today!,
    spentTokens: spentTokens!,
    spentNano: spentNano!,
    heldTokens: heldTokens!,
    heldNano: heldNano!,
  };
}

/**
 * How long a reservation holds its key's budget before the next admission may drop it as
 * abandoned (its instance died): longer than a request can be in flight without stalling —
 * connect + first byte + ten idle gaps (defaults: 10 + 120 + 600 s ≈ 12 min). A longer request
 * (a stream still flowing, a background response kept past its hold) loses its hold then, and its
 * settle still counts what it used.
 */
export function reservationHoldMs(timeouts: { connectTimeoutMs: number; firstByteTimeoutMs: number; idleTimeoutMs: number }): number {
  return timeouts.connectTimeoutMs + timeouts.firstByteTimeoutMs + 10 * timeouts.idleTimeoutMs;
}
