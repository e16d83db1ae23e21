import type { Caller } from '../auth/authenticator.js';
import { GatewayError } from '../errors/index.js';
import type { Estimate, LimitStore, Reservation } from '../limits/index.js';
import type { StorageHealth } from '../metering/storage-health.js';

export interface Ticket {
  /** x-ratelimit-* headers describing the key after this request was admitted. */
  readonly headers: Readonly<Record<string, string>>;
  settle(actual: { tokens: number; costUsd: number }): void;
  refund(): void;
}

const FREE: Ticket = Object.freeze({ headers: Object.freeze({}), settle() {}, refund() {} });

/**
 * The checks every request passes before it reaches an upstream, on every route: storage up
 * (or fail_open), the key may use the model, and its rate limits and budgets have room.
 */
export class Admission {
  constructor(
    private readonly limits: LimitStore,
    private readonly health: StorageHealth | undefined,
    private readonly failOpen: boolean,
  ) {}

  /** `estimate` is only called for keys with token limits or budgets (it tokenizes the prompt). */
  admit(caller: Caller, model: string | undefined, estimate: () => Estimate): Ticket | Promise<Ticket> {
    if (this.health && !this.health.healthy && !this.failOpen) {
      throw new GatewayError('storage_unavailable', 'The usage database is unavailable, so requests cannot be metered; try again shortly.');
    }
    const key = caller.key;
    if (key === undefined) return FREE;
    if (model !== undefined && key.models !== undefined && !key.models.test(model)) {
      throw new GatewayError('model_not_allowed', `Key "${key.name}" may not use model "${model}" (allowed: ${key.modelPatterns?.join(', ')}).`, { param: 'model' });
    }
    if (!key.limited) return FREE;
    const needed = key.needsTokenEstimate ? estimate() : { tokens: 0, costUsd: 0 };
    return this.limits.admit(key.id, key.name, key.limits, needed).then(
      (reservation: Reservation): Ticket => ({
        headers: this.limits.headers(key.id, key.limits),
        settle: (actual) => reservation.settle(actual),
        refund: () => reservation.refund(),
      }),
      (error: unknown) => {
        if (error instanceof GatewayError) throw error;
        if (this.failOpen) return FREE;
        throw new GatewayError('storage_unavailable', 'The usage database is unavailable, so budgets cannot be checked; try again shortly.', { cause: error });
      },
    );
  }
}
