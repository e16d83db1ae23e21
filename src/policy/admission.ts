import type { AppKey } from '../auth/app-key.js';
import type { Caller } from '../auth/authenticator.js';
import { GatewayError } from '../errors/index.js';
import type { Demand, Estimate, LimitStore, Reservation } from '../limits/index.js';
import { requestedMaxTokens } from '../metering/estimate-usage.js';
import type { PriceTable } from '../metering/pricing.js';
import type { StorageHealth } from '../metering/storage-health.js';
import { estimatePromptTokens, promptByteBound, type EstimateEndpoint } from '../metering/token-estimate.js';

/** An admitted request's hold on its key's limits: the limit store's reservation itself. */
export interface Ticket {
  /** x-ratelimit-* headers describing the key after this request was admitted. */
  readonly headers: Readonly<Record<string, string>>;
  settle(actual: { tokens: number; costUsd: number }): void;
  refund(): void;
}

const FREE: Ticket = Object.freeze({ headers: Object.freeze({}), settle() {}, refund() {} });
const NOTHING: Estimate = Object.freeze({ tokens: 0, costUsd: 0 });

/**
 * The checks every request passes before it reaches an upstream, on every route: storage up
 * (or fail_open), the key may use the model, a USD budget can count it, and its rate limits and
 * budgets have room.
 *
 * Both entry points return the ticket itself when the decision is immediate, which it is unless
 * the key's usage baseline is still loading: no promise, no closure, and one object (the
 * reservation) for a key with limits, none for a key without.
 */
export class Admission {
  constructor(
    private readonly limits: LimitStore,
    private readonly health: StorageHealth | undefined,
    private readonly failOpen: boolean,
    private readonly prices: PriceTable,
  ) {}

  /**
   * Admits a request that sends `body` (of endpoint `kind`) to `model`: its prompt and max_tokens,
   * priced, count toward the key's tpm and budgets. The prompt is tokenized only when its byte
   * bound does not fit what the key has left (see LimitTracker); the decision is the one the
   * tokenizer's estimate would get. `body` must not change until the request ends.
   */
  admitPrompt(caller: Caller, model: string | undefined, kind: EstimateEndpoint, body: unknown): Ticket | Promise<Ticket> {
    const key = this.check(caller, model);
    if (key === undefined || !key.limited) return FREE;
    return this.reserve(key, key.needsTokenEstimate ? new PromptDemand(this.prices, model ?? '', kind, body) : NOTHING);
  }

  /** Admits a request whose estimate the caller computes (a batch's lines); `estimate` is only called for keys with token limits or budgets. */
  admit(caller: Caller, model: string | undefined, estimate: () => Estimate): Ticket | Promise<Ticket> {
    const key = this.check(caller, model);
    if (key === undefined || !key.limited) return FREE;
    return this.reserve(key, key.needsTokenEstimate ? estimate() : NOTHING);
  }

  /**
   * The refusals that come before any limit (storage down, a model the key may not use or a USD
   * budget cannot price), without holding anything: for a WebSocket's handshake, whose turns are
   * admitted one by one later. Returns the caller's key, if it has one.
   */
  check(caller: Caller, model: string | undefined): AppKey | undefined {
    if (this.health && !this.health.healthy && !this.failOpen) {
      throw new GatewayError('storage_unavailable', 'The usage database is unavailable, so requests cannot be metered; try again shortly.');
    }
    const key = caller.key;
    if (key === undefined) return undefined;
    if (model !== undefined && key.models !== undefined && !key.models.matches(model)) {
      throw new GatewayError('model_not_allowed', `Key "${key.name}" may not use model "${model}" (allowed: ${key.modelPatterns?.join(', ') || 'none'}).`, { param: 'model' });
    }
    // An unpriced model costs null, which a USD budget would count as 0: refused, or the budget could be escaped.
    if (model !== undefined && key.limits.budgetUsd != null && this.prices.priceFor(model) === undefined) {
      throw new GatewayError('model_not_priced', `Model "${model}" has no price, so the USD budget of key "${key.name}" cannot count it; give it one in "prices" in the gateway config (or set "fallback_price" for every unlisted model).`, { param: 'model' });
    }
    return key;
  }

  private reserve(key: AppKey, demand: Demand): Ticket | Promise<Ticket> {
    let admitted: Reservation | Promise<Reservation>;
    try {
      admitted = this.limits.admit(key.id, key.name, key.limits, demand);
    } catch (error) {
      return this.unavailable(error);
    }
    if (admitted instanceof Promise) return admitted.then(undefined, (error: unknown) => this.unavailable(error));
    return admitted;
  }

  /** A refusal passes through; any other failure is the usage store's. */
  private unavailable(error: unknown): Ticket {
    if (error instanceof GatewayError) throw error;
    if (this.failOpen) return FREE;
    throw new GatewayError('storage_unavailable', 'The usage database is unavailable, so budgets cannot be checked; try again shortly.', { cause: error });
  }
}

/** A prompt's byte bound, priced, and the tokenizer's estimate when the limit store asks for it. */
class PromptDemand implements Demand {
  readonly tokens: number;
  readonly costUsd: number;
  private readonly completion: number;

  constructor(
    private readonly prices: PriceTable,
    private readonly model: string,
    private readonly kind: EstimateEndpoint,
    private readonly body: unknown,
  ) {
    const prompt = promptByteBound(kind, body);
    this.completion = requestedMaxTokens(body);
    this.tokens = prompt + this.completion;
    // Prices are non-negative (config checks it), so the cost of more tokens is never less.
    this.costUsd = prices.cost(model, { promptTokens: prompt, completionTokens: this.completion, cachedTokens: 0 }) ?? 0;
  }

  exact(): Estimate {
    const prompt = estimatePromptTokens(this.kind, this.body, this.model);
    return { tokens: prompt + this.completion, costUsd: this.prices.cost(this.model, { promptTokens: prompt, completionTokens: this.completion, cachedTokens: 0 }) ?? 0 };
  }
}
