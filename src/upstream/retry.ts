import type { IncomingHttpHeaders } from 'node:http';
import { errorCode, isTlsFailureCode } from './failure.js';

/**
 * Statuses worth another attempt before anything reached the client (openai-node retries the same
 * set, plus 408/409), and Anthropic's 529 `overloaded_error` (https://docs.anthropic.com/en/api/errors),
 * its 503: the upstream as a whole is busy, so the next attempt goes elsewhere when it can.
 */
const RETRYABLE_STATUSES = new Set([429, 500, 502, 503, 504, 529]);

/** A key answering these is wrong, unpaid or barred: retrying it never helps, so it is set aside until reload. */
const KEY_FAULT_STATUSES = new Set([401, 402, 403]);

/** The longest the pool waits before another attempt; a longer Retry-After ends the retries. */
export const MAX_RETRY_WAIT_MS = 10_000;
/** Backoff ceiling, as in openai-node. */
export const MAX_BACKOFF_MS = 8_000;

// Failures that happened before any response: the request may never have reached the upstream,
// or the upstream went away; another attempt (elsewhere, preferably) can succeed.
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

export function isKeyFaultStatus(status: number): boolean {
  return KEY_FAULT_STATUSES.has(status);
}

/** Whether a status counts against the upstream's circuit: server errors (Anthropic's 529 included), except "not implemented". */
export function isUpstreamFaultStatus(status: number): boolean {
  return status >= 500 && status !== 501 && status !== 505;
}

/** Connection refused/reset, DNS, TLS, connect and first-byte timeouts; not aborts, closed pools or our own bad arguments. */
export function isRetryableError(error: unknown): boolean {
  const code = errorCode(error);
  if (code === undefined) return false;
  return RETRYABLE_CODES.has(code) || isTlsFailureCode(code);
}

/** A short name for a failure in logs: the error code, or the error's class. */
export function failureName(error: unknown): string {
  return errorCode(error) ?? (error instanceof Error ? error.name : 'unknown');
}

/**
 * The wait an upstream asked for, in ms: `retry-after-ms` (a float, OpenAI's own), else
 * `retry-after` as seconds or an HTTP date (RFC 9110 §10.2.3). Undefined when absent or unreadable;
 * a date in the past is 0.
 */
export function parseRetryAfter(headers: IncomingHttpHeaders, now: number): number | undefined {
  const ms = single(headers['retry-after-ms']);
  if (ms !== undefined) {
    const value = Number(ms.trim());
    if (ms.trim() !== '' && Number.isFinite(value) && value >= 0) return value;
  }
  const after = single(headers['retry-after'])?.trim();
  if (after === undefined || after === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(after)) return Number(after) * 1000;
  // An HTTP date names a weekday and month; Date.parse would also read "-5" as a year.
  if (!/[a-z]{3}/i.test(after)) return undefined;
  const date = Date.parse(after);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Exponential backoff with jitter before retry `retry` (0 for the first retry):
 * base × 2^retry × a random factor in [0.5, 1), capped at 8 s. Jitter keeps many gateways (or
 * many requests) that failed together from coming back together.
 */
export function backoffDelay(retry: number, baseMs: number, random: () => number): number {
  const exponential = baseMs * 2 ** Math.min(retry, 30);
  return Math.min(MAX_BACKOFF_MS, exponential * (0.5 + random() / 2));
}

/**
 * Whether a 429 body says the account is out of credit (OpenAI: `error.code` or `error.type`
 * `insufficient_quota`) rather than rate-limited. Azure's throttling 429 has `code: "429"`.
 */
export function isQuotaExhausted(body: string): boolean {
  try {
    const error = (JSON.parse(body) as { error?: { code?: unknown; type?: unknown } } | null)?.error;
    return error?.code === 'insufficient_quota' || error?.type === 'insufficient_quota';
  } catch {
    return body.includes('insufficient_quota');
  }
}
