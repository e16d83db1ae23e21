import { GatewayError, type ErrorCode } from '../errors/index.js';
import { formatGoDuration } from './go-duration.js';
import { budgetPeriod } from './key-state.js';
import type { Ledger } from './ledger.js';
import type { KeyLimits } from './limit-store.js';
import { describePeriod, type PeriodKind } from './periods.js';
import { setRequestHeaders, setRetryHeaders, setTokenHeaders } from './rate-limit-headers.js';
import type { RequestWindow, TokenWindow } from './sliding-window.js';

/** What the client is told when retrying cannot help soon: openai-node's default backoff window. */
const NEVER_RETRY_MS = 60_000;

interface Failure {
  code: ErrorCode;
  /** Until the request could be admitted; Infinity when waiting alone never helps. */
  waitMs: number;
  message: string;
  /** Set for rpd, whose numbers then fill the -requests headers. */
  rpd?: boolean;
}

type LedgerView = Pick<Ledger, 'requests' | 'tokens' | 'costUsd' | 'reservedTokens' | 'reservedUsd' | 'end'>;

/**
 * What a refusal reads of a key: the in-memory KeyState, or the shared store's answer
 * (redis-limit-store.ts) dressed as one, so both give the same 429.
 */
export interface LimitView {
  readonly requests: Pick<RequestWindow, 'count' | 'expiryOf' | 'msUntilEmpty'> | undefined;
  readonly tokens: Pick<TokenWindow, 'used' | 'freeAt' | 'msUntilEmpty'> | undefined;
  readonly day: Pick<Ledger, 'requests' | 'end'> | undefined;
  ledger(kind: PeriodKind): LedgerView | undefined;
}

/**
 * The 429 for a request that does not fit. Runs only on rejection, after the tracker has read
 * the windows at `now`. When several limits fail, a budget wins (retrying does not help), else
 * the limit with the longest wait, so Retry-After is the real wait for all of them.
 */
export function limitRejection(state: LimitView, keyName: string, limits: KeyLimits, tokens: number, costUsd: number, now: number): GatewayError {
  const key = JSON.stringify(keyName);
  const failures: Failure[] = [];
  const { rpm, rpd, tpm, budgetTokens, budgetUsd } = limits;

  if (rpm != null && state.requests !== undefined) {
    const count = state.requests.count(now);
    if (count >= rpm) {
      const waitMs = rpm > 0 ? state.requests.expiryOf(count - rpm) - now : Number.POSITIVE_INFINITY;
      failures.push({ code: 'rate_limit_exceeded', waitMs, message: `Rate limit reached for key ${key}: ${rpm} requests per minute.${tryAgain(waitMs)}` });
    }
  }
  if (rpd != null && state.day !== undefined && state.day.requests >= rpd) {
    const waitMs = rpd > 0 ? state.day.end - now : Number.POSITIVE_INFINITY;
    failures.push({ code: 'rate_limit_exceeded', waitMs, rpd: true, message: `Rate limit reached for key ${key}: ${rpd} requests per day (UTC). It resets at 00:00 UTC.${tryAgain(waitMs)}` });
  }
  if (tpm != null && state.tokens !== undefined) {
    const used = state.tokens.used(now);
    if (tokens > tpm) {
      failures.push({
        code: 'rate_limit_exceeded',
        waitMs: Number.POSITIVE_INFINITY,
        message: `Request too large for key ${key}: it may use up to ${tokens} tokens (prompt estimate + max_tokens), more than the limit of ${tpm} tokens per minute. Shorten the prompt or lower max_tokens.`,
      });
    } else if (used + tokens > tpm) {
      const waitMs = state.tokens.freeAt(used + tokens - tpm) - now;
      failures.push({ code: 'rate_limit_exceeded', waitMs, message: `Rate limit reached for key ${key}: ${tpm} tokens per minute (used ${used}, requested ${tokens}).${tryAgain(waitMs)}` });
    }
  }
  const period = budgetPeriod(limits);
  const ledger = period === undefined ? undefined : state.ledger(period);
  if (period !== undefined && ledger !== undefined) {
    if (budgetTokens != null && ledger.tokens + ledger.reservedTokens + tokens > budgetTokens) {
      const spend = `used ${ledger.tokens}, in flight ${ledger.reservedTokens}, this request up to ${tokens}`;
      failures.push(budgetFailure(key, `${budgetTokens} tokens`, spend, period, ledger, now));
    } else if (budgetUsd != null && exceedsUsd(ledger.costUsd + ledger.reservedUsd + costUsd, budgetUsd)) {
      const spend = `used ${usd(ledger.costUsd)}, in flight ${usd(ledger.reservedUsd)}, this request up to ${usd(costUsd)}`;
      failures.push(budgetFailure(key, usd(budgetUsd), spend, period, ledger, now));
    }
  }

  let chosen: Failure | undefined;
  for (const failure of failures) {
    if (chosen === undefined || (chosen.code !== 'budget_exceeded' && (failure.code === 'budget_exceeded' || failure.waitMs > chosen.waitMs))) chosen = failure;
  }
  // The tracker only calls this when a check failed; this keeps a drifted caller from admitting silently.
  chosen ??= { code: 'rate_limit_exceeded', waitMs: 1000, message: `Rate limit reached for key ${key}.` };

  const headers: Record<string, string> = {};
  const finite = Number.isFinite(chosen.waitMs);
  setRetryHeaders(headers, finite ? chosen.waitMs : NEVER_RETRY_MS);
  if (!finite || chosen.code === 'budget_exceeded') headers['x-should-retry'] = 'false';
  if (rpd != null && state.day !== undefined && (chosen.rpd === true || rpm == null)) {
    setRequestHeaders(headers, rpd, rpd - state.day.requests, state.day.end - now);
  } else if (rpm != null) {
    const count = state.requests?.count(now) ?? 0;
    setRequestHeaders(headers, rpm, rpm - count, state.requests?.msUntilEmpty(now) ?? 0);
  }
  if (tpm != null) {
    const used = state.tokens?.used(now) ?? 0;
    setTokenHeaders(headers, tpm, tpm - used, state.tokens?.msUntilEmpty(now) ?? 0);
  }
  return new GatewayError(chosen.code, chosen.message, { headers });
}

/**
 * Costs are whole nano-dollars (metering/pricing.ts rounds them) summed in floating point, in an
 * order that depends on when requests end. Half a nano-dollar of slack absorbs that rounding: a
 * request that fits exactly is admitted and one a nano-dollar over is not, whatever the order.
 */
export function exceedsUsd(total: number, budget: number): boolean {
  return total > budget + 5e-10;
}

function budgetFailure(key: string, amount: string, spend: string, period: PeriodKind, ledger: LedgerView, now: number): Failure {
  const waitMs = ledger.end - now;
  let reset: string;
  if (period === 'total') reset = 'It does not reset.';
  else if (period === 'day') reset = `It resets at 00:00 UTC, in ${formatGoDuration(waitMs)}.`;
  else reset = `It resets on ${new Date(ledger.end).toISOString().slice(0, 10)} at 00:00 UTC.`;
  return { code: 'budget_exceeded', waitMs, message: `Budget exceeded for key ${key}: ${amount} ${describePeriod(period)} (${spend}). ${reset}` };
}

function tryAgain(waitMs: number): string {
  return Number.isFinite(waitMs) ? ` Try again in ${formatGoDuration(Math.ceil(Math.max(1, waitMs) / 1000) * 1000)}.` : ' Waiting will not help: the limit admits no requests.';
}

function usd(amount: number): string {
  // At the nano-dollar costs are counted in, so that the sums' rounding never shows.
  amount = Math.round(amount * 1e9) / 1e9;
  if (amount === 0 || amount >= 0.01) return `$${amount.toFixed(2)}`;
  return `$${Number(amount.toPrecision(2))}`;
}
