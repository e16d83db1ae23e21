import type { Caller } from '../auth/authenticator.js';
import { GatewayError } from '../errors/index.js';
import type { Estimate, LimitStore, Reservation } from '../limits/index.js';
import type { PriceTable } from '../metering/pricing.js';
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
 * (or fail_open), the key may use the model, a USD budget can count it, and its rate limits and
 * budgets have room.
 */
export class Admission {
  constructor(
    private readonly limits: LimitStore,
    private readonly health: StorageHealth | undefined,
    private readonly failOpen: boolean,
    private readonly prices: PriceTable,
  ) {}

  /** `estimate` is only called for keys with token limits or budgets (it tokenizes the prompt). */
  admit(caller: Caller, model: string | undefined, estimate: () => Estimate): Ticket | Promise<Ticket> {
    if (this.health && !this.health.healthy && !this.failOpen) {
      throw new GatewayError('storage_unavailable', 'The usage database is unavailable, so requests cannot be metered; try again shortly.');
    }
    const key = caller.key;
    if (key === undefined) return FREE;
    if (model !== undefined && key.models !== undefined && !key.models.matches(model)) {
      throw new GatewayError('model_not_allowed', `Key "${key.name}" may not use model "${model}" (allowed: ${key.modelPatterns?.join(', ') || 'none'}).`, { param: 'model' });
    }
    // An unpriced model costs null, which a USD budget would count as 0: refused, or the budget could be escaped.
    if (model !== undefined && key.limits.budgetUsd != null && this.prices.priceFor(model) === undefined) {
      throw new GatewayError('model_not_priced', `Model "${model}" has no price, so the USD budget of key "${key.name}" cannot count it; give it one in "prices" in the gateway config (or set "fallback_price" for every unlisted model).`, { param: 'model' });
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
