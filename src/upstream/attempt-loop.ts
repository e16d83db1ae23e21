import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import { traceOf, type AttemptTrace } from '../observability/tracing.js';
import type { UpstreamAnswer, UpstreamRequest } from './client.js';
import { upstreamFailure, type TimeoutSettings } from './failure.js';
import type { HealthMonitor } from './health-monitor.js';
import type { KeySlot } from './pool-member.js';
import { failureName } from './retry.js';
import { Failure, type RetryPolicy } from './retry-policy.js';
import type { Route, Router } from './router.js';

export interface PoolResponse extends UpstreamAnswer {
  /** The `include_usage` setting of the upstream that answered. */
  includeUsage: boolean;
}

export interface AttemptLoopParts {
  router: Router;
  policy: RetryPolicy;
  health: HealthMonitor;
  logger: Logger;
  timeouts: TimeoutSettings;
  now: () => number;
  /** Waits between attempts; resolves early or rejects when the signal aborts. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

/**
 * Performs a routed request's attempts: takes the key the router chooses, sends, lets the health
 * monitor learn from the outcome and the retry policy decide what follows, until an answer is
 * final or the policy stops. The answer stays counted in flight until its body closes.
 */
export class AttemptLoop {
  private readonly router: Router;
  private readonly policy: RetryPolicy;
  private readonly health: HealthMonitor;
  private readonly logger: Logger;
  private readonly timeouts: TimeoutSettings;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(parts: AttemptLoopParts) {
    this.router = parts.router;
    this.policy = parts.policy;
    this.health = parts.health;
    this.logger = parts.logger;
    this.timeouts = parts.timeouts;
    this.now = parts.now;
    this.sleep = parts.sleep;
  }

  async run(request: UpstreamRequest, route: Route): Promise<PoolResponse> {
    const { signal } = request;
    const trace = traceOf(signal);
    const maxAttempts = this.policy.attemptsFor(request);
    const pinned = route.pinnedKey;
    let next = pinned !== undefined && pinned.health.usable(this.now()) ? pinned : undefined;
    let wait = 0;
    for (let attempt = 1; ; attempt++) {
      if (wait > 0) await this.pause(wait, signal);
      if (signal.aborted) throw cancelled(signal);
      const slot = next ?? this.router.choose(route) ?? (await this.waitForKey(route, signal));
      const span = trace?.attempt(slot.member.config, request.method, attempt);
      const result = await this.attempt(slot, request, span);
      if (!(result instanceof Failure)) {
        if (this.logger.isLevelEnabled('debug')) this.logger.debug({ ...slot.logFields, attempt, status: result.statusCode }, 'upstream answered');
        return this.answer(slot, result, attempt, span);
      }
      const plan = this.policy.plan(route, slot, result, attempt, maxAttempts, signal.aborted);
      const fields = { ...slot.logFields, attempt, ...(result.response === undefined ? { error: failureName(result.error) } : { status: result.response.statusCode }) };
      if (plan === undefined) {
        this.logger.info(fields, 'upstream attempt failed; not retrying');
        if (result.response === undefined) {
          span?.end();
          throw signal.aborted ? cancelled(signal) : upstreamFailure(result.error, slot.member.name, this.timeouts);
        }
        return this.answer(slot, result.response, attempt, span);
      }
      span?.end();
      this.logger.info({ ...fields, retryInMs: Math.round(plan.wait) }, 'upstream attempt failed; retrying');
      if (result.response !== undefined) discard(slot, result.response);
      wait = plan.wait;
      next = plan.wait === 0 ? plan.next : undefined;
    }
  }

  /** One attempt with `slot`: the answer when it is final, else what went wrong; `span` (when traced) learns the outcome. */
  private async attempt(slot: KeySlot, request: UpstreamRequest, span: AttemptTrace | undefined): Promise<Dispatcher.ResponseData | Failure> {
    const member = slot.member;
    member.take(slot);
    const probe = member.circuit.enter(this.now());
    const headers = member.adapter.requestHeaders(request.headers, slot.headers);
    // W3C Trace Context: the upstream's work joins the caller's trace under this attempt.
    span?.inject(headers);
    let response: Dispatcher.ResponseData;
    try {
      response = await member.connection.dispatcher.request({
        origin: member.connection.origin,
        path: member.adapter.target(request.path, request.model),
        method: request.method,
        headers,
        body: request.body,
        signal: request.signal,
        headersTimeout: this.timeouts.firstByteTimeoutMs,
        bodyTimeout: this.timeouts.idleTimeoutMs,
      });
    } catch (error) {
      member.release(slot);
      span?.failed(failureName(error));
      this.health.noAnswer(slot, error, request.signal.aborted, probe);
      return this.policy.failed(error, request.signal.aborted);
    }
    span?.answered(response.statusCode);
    this.health.answered(slot, response.statusCode, probe);
    // Only a 429 is worth reading before the verdict (rate limit or empty account?); every other
    // answer is judged on its status, without a further await per request.
    if (response.statusCode === 429) {
      try {
        response = await this.health.rateLimited(slot, response);
      } catch (error) {
        member.release(slot);
        return this.policy.failed(error, false);
      }
    }
    return this.policy.judge(response) ?? response;
  }

  /** Every candidate is resting: wait for the soonest when it is near, else say why nothing can go. */
  private async waitForKey(route: Route, signal: AbortSignal): Promise<KeySlot> {
    // A timer can fire a millisecond before Date.now() reaches the key's rest end (libuv's cached
    // loop time): look again a few times rather than refuse a key about to be free.
    for (let look = 0; look < 3; look++) {
      const waitMs = this.policy.waitForCapacity(route);
      if (waitMs === undefined) break;
      await this.pause(waitMs, signal);
      const later = this.router.choose(route);
      if (later) return later;
    }
    throw this.router.unavailable(route);
  }

  /** The answer the caller relays; its attempt's span (when traced) ends with its body, as its load does. */
  private answer(slot: KeySlot, response: Dispatcher.ResponseData, attempts: number, span: AttemptTrace | undefined): PoolResponse {
    const member = slot.member;
    // In flight until the caller has relayed the whole body: long streams are the load that matters.
    if (response.body.destroyed) {
      member.release(slot);
      span?.end();
    } else {
      response.body.once('close', () => {
        member.release(slot);
        span?.end();
      });
    }
    return { response, upstream: member.name, upstreamKey: slot.fingerprint, attempts, includeUsage: member.config.includeUsage };
  }

  private async pause(ms: number, signal: AbortSignal): Promise<void> {
    await this.sleep(ms, signal);
    if (signal.aborted) throw cancelled(signal);
  }
}

/** Drops an answer that will not be relayed, so its connection goes back to the pool. */
function discard(slot: KeySlot, response: Dispatcher.ResponseData): void {
  slot.member.release(slot);
  response.body.dump().catch(() => undefined);
}

function cancelled(signal: AbortSignal): GatewayError {
  return new GatewayError('upstream_unreachable', 'The request was cancelled before an upstream answered.', { cause: signal.reason });
}
