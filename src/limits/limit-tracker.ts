import { GatewayError } from '../errors/index.js';
import { budgetPeriod, KeyState } from './key-state.js';
import { loadLedger, nonNegative, type Ledger } from './ledger.js';
import { exceedsUsd, limitRejection } from './limit-rejection.js';
import type { Demand, Estimate, KeyLimits, LimitStore, LoadUsage, Reservation } from './limit-store.js';
import type { PeriodKind } from './periods.js';
import { setRequestHeaders, setTokenHeaders } from './rate-limit-headers.js';
import { RequestWindow, TokenWindow } from './sliding-window.js';
import { tightenAll, TrackedReservation } from './tracked-reservation.js';

export interface LimitTrackerOptions {
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
  /** The key's recorded usage since the start of a period (all time when `since` is undefined). */
  loadUsage: LoadUsage;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
/** Nothing to hold: the reservation of keys without limits, shared so that path allocates nothing. */
const UNLIMITED: Reservation = Object.freeze({ headers: NO_HEADERS, settle() {}, refund() {} });

/**
 * Per-key rpm, rpd, tpm and budgets for one gateway instance, in memory.
 *
 * Exactness: a decision reads and updates the key's state synchronously, so concurrent requests
 * cannot both take the last slot. The only wait is the first load of a period's baseline from
 * the usage database; while it runs every admit() for that key queues, and when it lands the
 * queue is decided synchronously in arrival order. Every other admit() is decided on the spot,
 * without a promise. Every check is O(1) amortised per request.
 *
 * Bounds (a Demand with `exact`): a request whose bound fits every limit holds its bound, and its
 * estimate is never computed. One whose bound does not fit is decided on its estimate, after
 * every bound the key holds in flight was replaced by its estimate too. The checks only grow with
 * what is held, so "the bound fits, with bounds held" implies "the estimate fits, with estimates
 * held", and otherwise the decision reads what estimates alone would have made: each request is
 * admitted or refused exactly as if every request had been estimated, with the same 429.
 */
export class LimitTracker implements LimitStore {
  private readonly now: () => number;
  private readonly loadUsage: LoadUsage;
  private readonly states = new Map<string, KeyState>();

  constructor(options: LimitTrackerOptions) {
    this.now = options.now ?? Date.now;
    this.loadUsage = options.loadUsage;
  }

  admit(keyId: string, keyName: string, limits: KeyLimits, demand: Demand): Reservation | Promise<Reservation> {
    if (limits.rpm == null && limits.tpm == null && limits.rpd == null && limits.budgetTokens == null && limits.budgetUsd == null) {
      return UNLIMITED;
    }
    let state = this.states.get(keyId);
    if (state === undefined) {
      state = new KeyState(keyId);
      this.states.set(keyId, state);
    }
    let now = 0;
    const loading = state.waiting !== undefined;
    if (!loading) {
      now = this.now();
      if (!needsLoad(state, limits, now)) {
        const decision = this.decide(state, keyName, limits, demand, now);
        if (decision instanceof GatewayError) throw decision;
        return decision;
      }
    }
    const waiting = (state.waiting ??= []);
    const admission = new Promise<Reservation>((resolve, reject) => {
      waiting.push({ keyName, limits, demand, resolve, reject });
    });
    if (!loading) this.load(state, limits, now);
    return admission;
  }

  /** x-ratelimit-* headers for the key as it is now; empty when it has neither rpm nor tpm. */
  headers(keyId: string, limits: KeyLimits): Readonly<Record<string, string>> {
    return this.headersAt(this.states.get(keyId), limits, this.now());
  }

  record(keyId: string, limits: KeyLimits, actual: Estimate): void {
    const tokens = nonNegative(actual.tokens);
    const costUsd = nonNegative(actual.costUsd);
    let state = this.states.get(keyId);
    if (state === undefined) {
      // Its budget periods load from the usage database on the key's next request; the tpm
      // window exists only here, so it starts now.
      if (limits.tpm == null) return;
      state = new KeyState(keyId);
      this.states.set(keyId, state);
    }
    if (limits.tpm != null) (state.tokens ??= new TokenWindow()).push(this.now(), tokens);
    state.day?.record(tokens, costUsd);
    state.month?.record(tokens, costUsd);
    state.total?.record(tokens, costUsd);
  }

  forget(keyId: string): void {
    const state = this.states.get(keyId);
    if (state === undefined) return;
    state.forgotten = true;
    this.states.delete(keyId);
  }

  /** Decides one request against loaded state: admits and records it, or returns the 429. */
  private decide(state: KeyState, keyName: string, limits: KeyLimits, demand: Demand, now: number): Reservation | GatewayError {
    let tokens = nonNegative(demand.tokens);
    let costUsd = nonNegative(demand.costUsd);
    let loose = demand.exact !== undefined;
    if (!fits(state, limits, tokens, costUsd, now)) {
      if (!loose) return limitRejection(state, keyName, limits, tokens, costUsd, now);
      // Decide on the estimate, against estimates: see the class comment.
      tightenAll(state);
      const estimate = demand.exact!();
      tokens = nonNegative(estimate.tokens);
      costUsd = nonNegative(estimate.costUsd);
      loose = false;
      if (!fits(state, limits, tokens, costUsd, now)) return limitRejection(state, keyName, limits, tokens, costUsd, now);
    }

    const { rpm, tpm } = limits;
    if (rpm != null) state.requests!.push(now, rpm);
    const seq = tpm != null ? state.tokens!.push(now, tokens) : -1;
    // Every ledger the key has keeps counting, not only the ones today's limits read.
    state.day?.reserve(tokens, costUsd);
    state.month?.reserve(tokens, costUsd);
    state.total?.reserve(tokens, costUsd);
    return new TrackedReservation(this.states, state, seq, tokens, costUsd, this.headersAt(state, limits, now), loose ? demand : undefined);
  }

  private headersAt(state: KeyState | undefined, limits: KeyLimits, now: number): Readonly<Record<string, string>> {
    const { rpm, tpm } = limits;
    if (rpm == null && tpm == null) return NO_HEADERS;
    const headers: Record<string, string> = {};
    if (rpm != null) {
      const window = state?.requests;
      setRequestHeaders(headers, rpm, rpm - (window?.count(now) ?? 0), window?.msUntilEmpty(now) ?? 0);
    }
    if (tpm != null) {
      const window = state?.tokens;
      setTokenHeaders(headers, tpm, tpm - (window?.used(now) ?? 0), window?.msUntilEmpty(now) ?? 0);
    }
    return headers;
  }

  /** Loads the baselines `limits` needs for the period containing `now`, then drains the queue. */
  private load(state: KeyState, limits: KeyLimits, now: number): void {
    const loads: Promise<Ledger>[] = [];
    for (const kind of neededPeriods(limits)) {
      if (!isFresh(state.ledger(kind), now)) loads.push(loadLedger(kind, now, state.keyId, this.loadUsage));
    }
    Promise.all(loads).then(
      (ledgers) => {
        for (const ledger of ledgers) state.install(ledger);
        this.drain(state);
      },
      (error: unknown) => {
        const waiting = state.waiting ?? [];
        state.waiting = undefined;
        for (const waiter of waiting) waiter.reject(error);
      },
    );
  }

  /** Decides the queued requests in arrival order, until one needs another load. */
  private drain(state: KeyState): void {
    const waiting = state.waiting ?? [];
    state.waiting = undefined;
    if (state.forgotten) {
      // forget() ran during the load: start over against whatever state the key has now.
      for (const waiter of waiting) {
        try {
          const admitted = this.admit(state.keyId, waiter.keyName, waiter.limits, waiter.demand);
          if (admitted instanceof Promise) admitted.then(waiter.resolve, waiter.reject);
          else waiter.resolve(admitted);
        } catch (error) {
          waiter.reject(error);
        }
      }
      return;
    }
    for (let i = 0; i < waiting.length; i += 1) {
      const waiter = waiting[i]!;
      const now = this.now();
      if (needsLoad(state, waiter.limits, now)) {
        // The period rolled over while loading, or a queued request has other limits.
        state.waiting = waiting.slice(i);
        this.load(state, waiter.limits, now);
        return;
      }
      const decision = this.decide(state, waiter.keyName, waiter.limits, waiter.demand, now);
      if (decision instanceof GatewayError) waiter.reject(decision);
      else waiter.resolve(decision);
    }
  }
}

/** Whether `tokens` and `costUsd` fit every limit of the key at `now` (creating its windows on first use). */
function fits(state: KeyState, limits: KeyLimits, tokens: number, costUsd: number, now: number): boolean {
  const { rpm, rpd, tpm, budgetTokens, budgetUsd } = limits;
  let fit = true;
  if (rpm != null) {
    state.requests ??= new RequestWindow(rpm);
    if (state.requests.count(now) >= rpm) fit = false;
  }
  if (rpd != null && state.day!.requests >= rpd) fit = false;
  if (tpm != null) {
    state.tokens ??= new TokenWindow();
    if (tokens > tpm || state.tokens.used(now) + tokens > tpm) fit = false;
  }
  const period = budgetPeriod(limits);
  if (period !== undefined) {
    const ledger = state.ledger(period)!;
    if (budgetTokens != null && ledger.tokens + ledger.reservedTokens + tokens > budgetTokens) fit = false;
    if (budgetUsd != null && exceedsUsd(ledger.costUsd + ledger.reservedUsd + costUsd, budgetUsd)) fit = false;
  }
  return fit;
}

/** Whether deciding `limits` needs a baseline the state does not have for the period containing `now`. */
function needsLoad(state: KeyState, limits: KeyLimits, now: number): boolean {
  const period = budgetPeriod(limits);
  if (limits.rpd != null && !isFresh(state.day, now)) return true;
  return period !== undefined && !isFresh(state.ledger(period), now);
}

function neededPeriods(limits: KeyLimits): PeriodKind[] {
  const periods: PeriodKind[] = [];
  const period = budgetPeriod(limits);
  if (limits.rpd != null || period === 'day') periods.push('day');
  if (period === 'month' || period === 'total') periods.push(period);
  return periods;
}

function isFresh(ledger: Ledger | undefined, now: number): boolean {
  return ledger !== undefined && now < ledger.end;
}
