import { formatGoDuration } from './go-duration.js';

/**
 * OpenAI's rate-limit response headers (/work/shared/reference/openai-protocol.md §8): limit and
 * remaining as integers, reset as a Go duration until the window is fully reset.
 */
export function setRequestHeaders(headers: Record<string, string>, limit: number, remaining: number, resetMs: number): void {
  headers['x-ratelimit-limit-requests'] = String(limit);
  headers['x-ratelimit-remaining-requests'] = String(Math.max(0, Math.floor(remaining)));
  headers['x-ratelimit-reset-requests'] = formatGoDuration(resetMs);
}

export function setTokenHeaders(headers: Record<string, string>, limit: number, remaining: number, resetMs: number): void {
  headers['x-ratelimit-limit-tokens'] = String(limit);
  headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, Math.floor(remaining)));
  headers['x-ratelimit-reset-tokens'] = formatGoDuration(resetMs);
}

/**
 * Retry-After in whole seconds (at least 1, rounded up so a client never comes back early) and
 * `retry-after-ms`, which openai-node reads first.
 */
export function setRetryHeaders(headers: Record<string, string>, waitMs: number): void {
  const ms = Math.max(1, Math.ceil(waitMs));
  headers['retry-after'] = String(Math.ceil(ms / 1000));
  headers['retry-after-ms'] = String(ms);
}
