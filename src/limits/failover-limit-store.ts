import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import type { Demand, Estimate, KeyLimits, LimitStore, Reservation } from './limit-store.js';
import type { LimitTracker } from './limit-tracker.js';
import { BaselineUnavailable, type RedisLimitStore } from './redis-limit-store.js';
import { toNano, wholeTokens } from './redis-keys.js';

/** The connection's health as storage/redis.ts reports it. */
export interface SharedHealth {
  readonly healthy: boolean;
  onHealthChange(listener: (healthy: boolean) => void): () => void;
}

export interface FailoverLimitStoreOptions {
  shared: RedisLimitStore;
  /** The in-memory limits used while Redis is away and fail_open is on. */
  local: LimitTracker;
  health: SharedHealth;
  /** Read per request, so a reload of `fail_open` applies at once. */
  failOpen: () => boolean;
  logger: Logger;
}

/**
 * Shared limits while Redis answers; while it does not, the database's `fail_open` rule:
 * off, every limited request is refused with 503 `limits_unavailable` (at once while the
 * connection is known down, after the command timeout at worst); on, this instance's own
 * in-memory limits decide (each instance then allows the whole limit by itself). What was
 * spent meanwhile is added to the shared ledgers when Redis is back, and the local state is
 * dropped, so a later outage starts from the database again. No restart is needed either way.
 */
export class FailoverLimitStore implements LimitStore {
  private readonly shared: RedisLimitStore;
  private readonly local: LimitTracker;
  private readonly health: SharedHealth;
  /** Keys the local limits decided during the current outage, forgotten when it ends. */
  private readonly localKeys = new Set<string>();
  /** A command failed while the connection looked up (a stalled Redis): logged once until one succeeds. */
  private failing = false;

  constructor(private readonly options: FailoverLimitStoreOptions) {
    this.shared = options.shared;
    this.local = options.local;
    this.health = options.health;
    this.health.onHealthChange((healthy) => {
      if (healthy) this.recovered();
    });
  }

  admit(keyId: string, keyName: string, limits: KeyLimits, demand: Demand): Reservation | Promise<Reservation> {
    if (!this.health.healthy) return this.alone(keyId, keyName, limits, demand);
    return this.shared.admit(keyId, keyName, limits, demand).then(
      (reservation) => {
        if (this.failing || this.shared.deferredKeys > 0) this.recovered();
        return reservation;
      },
      (error: unknown) => {
        // A refusal, or the usage database down (Admission applies fail_open to it as on one instance).
        if (error instanceof GatewayError || error instanceof BaselineUnavailable) throw error;
        if (!this.failing) {
          this.failing = true;
          this.options.logger.error({ err: (error as Error).message }, `shared limits: redis did not answer; ${this.options.failOpen() ? 'each instance applies its own limits' : 'limited requests are refused (503)'} until it does`);
        }
        return this.alone(keyId, keyName, limits, demand);
      },
    );
  }

  record(keyId: string, limits: KeyLimits, actual: Estimate): void {
    if (this.health.healthy) {
      this.shared.record(keyId, limits, actual);
    } else {
      this.local.record(keyId, limits, actual);
      this.shared.defer(keyId, 0, wholeTokens(actual.tokens), toNano(actual.costUsd));
    }
  }

  forget(keyId: string): void {
    this.local.forget(keyId);
    this.shared.forget(keyId);
  }

  /** Without Redis: refused, or (fail_open) decided by the local limits and remembered for the shared ones. */
  private alone(keyId: string, keyName: string, limits: KeyLimits, demand: Demand): Reservation | Promise<Reservation> {
    if (!this.options.failOpen()) {
      throw new GatewayError('limits_unavailable', 'The shared rate-limit store (Redis) is unavailable, so limits and budgets cannot be checked; try again shortly.', { headers: { 'retry-after': '1' } });
    }
    this.localKeys.add(keyId);
    const admitted = this.local.admit(keyId, keyName, limits, demand);
    const owe: Owe = (requests, tokens, nano) => {
      this.shared.defer(keyId, requests, tokens, nano);
      // Settled after Redis came back: nothing else would replay it.
      if (this.health.healthy && !this.failing) void this.shared.replay();
    };
    if (admitted instanceof Promise) return admitted.then((reservation) => new DeferredReservation(owe, reservation));
    return new DeferredReservation(owe, admitted);
  }

  private recovered(): void {
    if (this.failing) this.options.logger.info('shared limits: redis answers again');
    this.failing = false;
    for (const keyId of this.localKeys) this.local.forget(keyId);
    this.localKeys.clear();
    void this.shared.replay();
  }
}

type Owe = (requests: number, tokens: number, nano: number) => void;

/** A reservation the local limits made: its spend is also kept for the shared ledgers. */
class DeferredReservation implements Reservation {
  private done = false;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    private readonly owe: Owe,
    private readonly inner: Reservation,
  ) {
    this.headers = inner.headers;
  }

  settle(actual: { tokens: number; costUsd: number }): void {
    if (this.done) return;
    this.done = true;
    this.inner.settle(actual);
    this.owe(1, wholeTokens(actual.tokens), toNano(actual.costUsd));
  }

  refund(): void {
    if (this.done) return;
    this.done = true;
    this.inner.refund();
    this.owe(1, 0, 0);
  }

  keep(): void {
    this.inner.keep?.();
  }
}
