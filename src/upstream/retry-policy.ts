import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { PoolSettings } from '../config/upstream-entry.js';
import type { UpstreamRequest } from './client.js';
import type { KeySlot } from './pool-member.js';
import { backoffDelay, isKeyFaultStatus, isRetryableError, isRetryableStatus, MAX_RETRY_WAIT_MS, parseRetryAfter } from './retry.js';
import type { Route, Router } from './router.js';

/** A failed attempt, as the retry policy reads it. */
export class Failure {
  private constructor(
    /** The answer to relay when no retry follows; undefined when the attempt got none. */
    readonly response: Dispatcher.ResponseData | undefined,
    /** Why there was no answer. */
    readonly error: unknown,
    /** Whether another attempt can help at all (not after an abort or our own bad arguments). */
    readonly retryable: boolean,
    /** The key was at fault (429, 401/402/403): another key of the same upstream may go at once. */
    readonly keyFault: boolean,
    /** The wait the upstream asked for, in ms. */
    readonly retryAfterMs: number | undefined,
  ) {}

  /** The upstream as a whole failed (5xx, no answer): the next attempt goes elsewhere when it can. */
  get upstreamFault(): boolean {
    return !this.keyFault;
  }

  static byKey(response: Dispatcher.ResponseData, retryAfterMs: number | undefined): Failure {
    return new Failure(response, undefined, true, true, retryAfterMs);
  }

  static byUpstream(response: Dispatcher.ResponseData, retryAfterMs: number | undefined): Failure {
    return new Failure(response, undefined, true, false, retryAfterMs);
  }

  static noAnswer(error: unknown, retryable: boolean): Failure {
    return new Failure(undefined, error, retryable, false, undefined);
  }
}

/** What follows a failed attempt: wait `wait` ms, then send with `next` (or choose again after a wait). */
export interface RetryPlan {
  wait: number;
  next: KeySlot | undefined;
}

/**
 * When a request is tried again, after how long, and where — the decisions of undici's retry
 * handler (`lib/handler/retry-handler.js`), made for a pool: which failures are worth another
 * attempt (before anything reached the client), how long to back off or honour Retry-After, and
 * which upstream or key goes next. The loop that performs the attempts only asks.
 */
export class RetryPolicy {
  constructor(
    private readonly settings: Pick<PoolSettings, 'maxAttempts' | 'retryBaseDelayMs'>,
    private readonly router: Router,
    private readonly now: () => number,
    private readonly random: () => number,
  ) {}

  /** How many attempts a request may make: a stream is read as it is sent, so there is nothing left to send a second time. */
  attemptsFor(request: UpstreamRequest): number {
    return request.body instanceof Readable ? 1 : this.settings.maxAttempts;
  }

  /** An answer that should not be relayed as is while attempts remain (429, 401/402/403, 5xx), or undefined for a final one. */
  judge(response: Dispatcher.ResponseData): Failure | undefined {
    const status = response.statusCode;
    if (status === 429) return Failure.byKey(response, parseRetryAfter(response.headers, this.now()));
    if (isKeyFaultStatus(status)) return Failure.byKey(response, undefined);
    if (isRetryableStatus(status)) return Failure.byUpstream(response, parseRetryAfter(response.headers, this.now()));
    return undefined;
  }

  /** An attempt without an answer: connection and first-byte failures are worth another, an abort is not. */
  failed(error: unknown, aborted: boolean): Failure {
    return Failure.noAnswer(error, !aborted && isRetryableError(error));
  }

  /**
   * How long to wait before the next attempt and with which key, or undefined to stop. Another
   * upstream — or, after a key fault (429, 401…), another key — goes at once; the same upstream
   * again waits for its Retry-After (up to 10 s) or the exponential backoff; nothing available
   * within 10 s stops.
   */
  plan(route: Route, failed: KeySlot, failure: Failure, attempt: number, maxAttempts: number, aborted: boolean): RetryPlan | undefined {
    if (attempt >= maxAttempts || aborted || !failure.retryable) return undefined;
    route.tried(failed, failure.upstreamFault);
    const backoff = backoffDelay(attempt - 1, this.settings.retryBaseDelayMs, this.random);
    const next = this.router.choose(route);
    if (next) {
      if (next.member !== failed.member || (failure.keyFault && next !== failed)) return { wait: 0, next };
      if (failure.retryAfterMs !== undefined) return failure.retryAfterMs <= MAX_RETRY_WAIT_MS ? { wait: failure.retryAfterMs, next } : undefined;
      return { wait: backoff, next };
    }
    const until = this.router.availableAt(route) - this.now();
    if (until > MAX_RETRY_WAIT_MS) return undefined;
    return { wait: Math.max(until, failure.keyFault ? 1 : backoff), next: undefined };
  }

  /** Every candidate is resting: how long to wait for the soonest, or undefined when that is too far off. */
  waitForCapacity(route: Route): number | undefined {
    const waitMs = this.router.availableAt(route) - this.now();
    return waitMs <= MAX_RETRY_WAIT_MS ? Math.max(waitMs, 1) : undefined;
  }
}
