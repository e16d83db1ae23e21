import type { AppKey } from '../auth/app-key.js';
import type { LimitStore, Reservation } from '../limits/index.js';
import type { PriceTable } from '../metering/pricing.js';
import type { Meter } from '../metering/usage-event.js';
import type { Logger } from '../observability/logger.js';
import type { Usage } from '../streaming/usage.js';
import type { OwnedObject, Ownership } from './ownership.js';

/** Reservations held for background responses whose usage this instance has not seen yet. */
const HOLD_LIMIT = 100_000;
/** The owner id ownership records for callers without an app key (ownerIdOf). */
const CALLER_PREFIX = 'caller:';

export interface BackgroundUsageOptions {
  ownership: Ownership;
  meter: Meter;
  limits: LimitStore;
  /** The app key with this id as the key store has it now; undefined once deleted. */
  keyById(id: string): AppKey | undefined;
  prices(): PriceTable;
  logger: Logger;
  holdLimit?: number;
}

/** Where the finished response was seen. */
export interface Sighting {
  /** The id of the request that saw it; the usage record's id is this plus `:usage`. */
  requestId: string;
  /** The upstream that answered. */
  upstream: string | undefined;
}

/**
 * The usage of background responses (`"background": true` on POST /v1/responses), which arrives
 * after the request that created them: recorded once, under the key that created the response,
 * when the gateway first sees it finished — a retrieve, a retrieve's event stream, or the
 * creating request's own stream.
 *
 * - **Reservation.** The creating request is admitted like any other (its prompt estimate plus
 *   max_output_tokens) and its reservation is not settled when it ends: it is held here, by
 *   response id, as the estimate (`Reservation.keep`), so the key's tpm and budgets count it while
 *   the response runs — firing many background responses fills the budget with their estimates,
 *   as many concurrent requests would. The hold is replaced by the real usage when this instance
 *   records it, and released when another instance did (that one counts the usage). A hold whose
 *   usage is never seen stays counted until a restart (the upstream bills the response whether or
 *   not anyone looks); past `holdLimit` the oldest are forgotten, still counted.
 * - **Once.** The response's ownership record is marked pending when it is created; recording
 *   claims it with one conditional UPDATE (ObjectsRepository.claimUsage), so across concurrent
 *   retrieves and gateway instances exactly one records it. Retrieves after that are relayed
 *   without a look at their usage.
 */
export class BackgroundUsage {
  private readonly holds = new Map<string, Reservation>();
  private readonly holdLimit: number;

  constructor(private readonly options: BackgroundUsageOptions) {
    this.holdLimit = options.holdLimit ?? HOLD_LIMIT;
  }

  /** Reservations held now (for tests and status). */
  get held(): number {
    return this.holds.size;
  }

  /** Holds the creating request's reservation until the response's usage is recorded. */
  hold(id: string, reservation: Reservation | undefined): void {
    if (reservation === undefined) return;
    reservation.keep?.();
    if (this.holds.size >= this.holdLimit) {
      // Forgotten, not refunded: the reservation stays counted, it just can no longer be replaced by the real usage.
      const oldest = this.holds.keys().next().value;
      if (oldest !== undefined) this.holds.delete(oldest);
    }
    this.holds.get(id)?.refund();
    this.holds.set(id, reservation);
  }

  /**
   * Records a finished background response's usage unless some instance already did. Never
   * throws: when the database cannot decide, nothing is recorded and a later sighting tries again.
   */
  async settle(object: OwnedObject, usage: Usage, seen: Sighting): Promise<void> {
    const { ownership, meter, limits, logger } = this.options;
    const pending = object.pendingUsage;
    if (pending === undefined || pending.recordedAt !== undefined) return;
    const now = new Date();
    let claimed: boolean;
    try {
      claimed = await ownership.claimUsage(object, now);
    } catch (error) {
      logger.error({ err: (error as Error).message, response: object.id }, 'could not record the usage of a background response; a later retrieve will');
      return;
    }
    const reservation = this.holds.get(object.id);
    this.holds.delete(object.id);
    if (!claimed) {
      // Recorded elsewhere (another instance, or a concurrent retrieve that found no hold here).
      reservation?.refund();
      return;
    }
    const model = pending.model ?? undefined;
    const costUsd = this.options.prices().cost(model, usage);
    const actual = { tokens: usage.totalTokens, costUsd: costUsd ?? 0 };
    const appKey = object.keyId.startsWith(CALLER_PREFIX) ? undefined : object.keyId;
    const key = appKey === undefined ? undefined : this.options.keyById(appKey);
    if (reservation !== undefined) reservation.settle(actual);
    else if (key !== undefined) limits.record(key.id, key.limits, actual);
    meter.record({
      requestId: `${seen.requestId}:usage`,
      time: now,
      keyId: appKey,
      // A deleted key's usage stays under its id; its name is gone.
      caller: appKey === undefined ? object.keyId.slice(CALLER_PREFIX.length) : (key?.name ?? appKey),
      route: `/v1/responses/${object.id}`,
      model,
      upstream: seen.upstream ?? object.upstream,
      status: 200,
      usage,
      costUsd,
      usageSource: 'upstream',
      latencyMs: 0,
      ttfbMs: undefined,
      aborted: false,
      errorCode: undefined,
    });
  }
}
