import type { Dispatcher } from 'undici';
import type { PoolSettings } from '../config/upstream-entry.js';
import type { Logger } from '../observability/logger.js';
import type { Outcome } from './health.js';
import type { KeyVerdictListener } from './key-verdict.js';
import type { KeySlot, PoolMember } from './pool-member.js';
import { upstreamErrorMessage } from './error-body.js';
import { peekBody } from './replay-body.js';
import { isKeyFaultStatus, isQuotaExhausted, isRetryableError, isUpstreamFaultStatus, parseRetryAfter } from './retry.js';

// A 429 body is read to tell "rate limited" from "out of quota"; they are a few hundred bytes.
const PEEK_LIMIT = 64 * 1024;
const MAX_COOLDOWN_MS = 60 * 60 * 1000;

/**
 * What each attempt teaches about the upstream and the key it used: connect errors, timeouts and
 * 5xx count against the upstream's circuit; a key answering 401/402/403, or 429 with
 * `insufficient_quota`, is set aside until reload; a key answering 429 otherwise rests for its
 * Retry-After (or `cooldown`). Logs every change of standing, and tells `onVerdict` (the other
 * instances, through the shared Redis) what it learned about a key.
 */
export class HealthMonitor {
  constructor(
    private readonly logger: Logger,
    private readonly settings: Pick<PoolSettings, 'cooldownMs' | 'circuitOpenMs'>,
    private readonly now: () => number,
    private readonly onVerdict?: KeyVerdictListener,
  ) {}

  /** An attempt that got no answer: a verdict on the upstream, unless the caller left or the failure was ours. */
  noAnswer(slot: KeySlot, error: unknown, aborted: boolean, probe: boolean): void {
    if (!aborted) {
      slot.errors += 1;
      const failure = error as { code?: unknown; name?: unknown; message?: unknown } | undefined;
      const code = typeof failure?.code === 'string' ? failure.code : typeof failure?.name === 'string' ? failure.name : null;
      slot.member.lastErrors.add(this.now(), slot.index, null, code, typeof failure?.message === 'string' ? failure.message : String(error));
    }
    this.record(slot.member, !aborted && isRetryableError(error) ? 'failure' : 'neutral', probe);
  }

  /** An answer: its status is the verdict on the upstream's circuit, and a refused key is set aside. */
  answered(slot: KeySlot, status: number, probe: boolean): void {
    this.record(slot.member, isUpstreamFaultStatus(status) ? 'failure' : 'success', probe);
    if (status >= 500 || status === 429 || isKeyFaultStatus(status)) slot.errors += 1;
    // A 429's message is read from its body (rateLimited); the others are told by their status.
    if (status >= 500 || isKeyFaultStatus(status)) slot.member.lastErrors.add(this.now(), slot.index, status, null, isKeyFaultStatus(status) ? `HTTP ${status}: the upstream refused the key` : `HTTP ${status}`);
    if (isKeyFaultStatus(status)) this.disable(slot, `HTTP ${status}`, status);
  }

  /**
   * A 429 is either a rate limit (the key rests for Retry-After or `cooldown`) or an empty account
   * (the key is set aside): its body tells which. Returns the answer with its body whole again.
   */
  async rateLimited(slot: KeySlot, response: Dispatcher.ResponseData): Promise<Dispatcher.ResponseData> {
    const peeked = await peekBody(response.body, PEEK_LIMIT);
    const replayed = { ...response, body: peeked.body };
    const quota = isQuotaExhausted(peeked.text);
    slot.member.lastErrors.add(this.now(), slot.index, 429, quota ? 'insufficient_quota' : 'rate_limited', upstreamErrorMessage(429, peeked.text, []));
    if (quota) {
      this.disable(slot, 'HTTP 429 insufficient_quota', 429);
      return replayed;
    }
    const now = this.now();
    const coolingMs = Math.min(parseRetryAfter(response.headers, now) ?? this.settings.cooldownMs, MAX_COOLDOWN_MS);
    slot.health.coolFor(now, coolingMs);
    if (slot.fingerprint !== null) this.onVerdict?.({ upstream: slot.member.name, key: slot.fingerprint, state: 'cooling', ms: Math.round(coolingMs) });
    this.logger.warn({ ...slot.logFields, coolingMs: Math.round(coolingMs) }, 'upstream key rate-limited (429); it rests before its next request');
    return replayed;
  }

  private disable(slot: KeySlot, reason: string, status: number): void {
    if (slot.health.disable(reason, this.now())) {
      this.logger.error({ ...slot.logFields, status, reason }, 'upstream key disabled until reload: the upstream refused it (wrong, revoked, unpaid or out of quota); replace it in the config');
      // A keyless upstream has nothing to name the key by; its other instances learn it themselves.
      if (slot.fingerprint !== null) this.onVerdict?.({ upstream: slot.member.name, key: slot.fingerprint, state: 'disabled', status });
    }
  }

  private record(member: PoolMember, outcome: Outcome, probe: boolean): void {
    const change = member.circuit.record(outcome, probe, this.now());
    if (change === 'opened') {
      this.logger.warn({ upstream: member.name, openSeconds: this.settings.circuitOpenMs / 1000 }, 'upstream circuit opened: too many connect errors, timeouts or 5xx; requests go elsewhere until a probe succeeds');
    } else if (change === 'closed') {
      this.logger.info({ upstream: member.name }, 'upstream circuit closed: the probe succeeded');
    }
  }
}
