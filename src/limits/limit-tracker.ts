import { GatewayError } from '../errors/index.js';
import { budgetPeriod, KeyState } from './key-state.js';
import { loadLedger, nonNegative, type Ledger } from './ledger.js';
import { exceedsUsd, limitRejection } from './limit-rejection.js';
import type { Estimate, KeyLimits, LimitStore, LoadUsage, Reservation } from './limit-store.js';
import type { PeriodKind } from './periods.js';
import { setRequestHeaders, setTokenHeaders } from './rate-limit-headers.js';
import { RequestWindow, TokenWindow } from './sliding-window.js';

export interface LimitTrackerOptions {
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
  /** The key's recorded usage since the start of a period (all time when `since` is undefined). */
  loadUsage: LoadUsage;
}

/** Nothing to hold: the reservation of keys without limits, shared so that path allocates nothing. */
const UNLIMITED: Reservation = Object.freeze({ settle() {}, refund() {} });
const UNLIMITED_ADMISSION: Promise<Reservation> = Promise.resolve(UNLIMITED);
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Per-key rpm, rpd, tpm and budgets for one gateway instance, in memory.
 *
 * Exactness: a decision reads and updates the key's state synchronously, so concurrent requests
 * cannot both take the last slot. The only await is the first load of a period's baseline from
 * the usage database; while it runs every admit() for that key queues, and when it lands the
 * queue is decided synchronously in arrival order. Every check is O(1) amortised per request.
 */
export class LimitTracker implements LimitStore {
  private readonly now: () => number;
  private readonly loadUsage: LoadUsage;
  private readonly states = new Map<string, KeyState>();

  constructor(options: LimitTrackerOptions) {
    this.now = options.now ?? Date.now;
    this.loadUsage = options.loadUsage;
  }

  admit(keyId: string, keyName: string, limits: KeyLimits, estimate: Estimate): Promise<Reservation> {
    if (limits.rpm == null && limits.tpm == null && limits.rpd == null && limits.budgetTokens == null && limits.budgetUsd == null) {
      return UNLIMITED_ADMISSION;
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
        const decision = this.decide(state, keyName, limits, estimate, now);
        return decision instanceof GatewayError ? Promise.reject(decision) : Promise.resolve(decision);
      }
    }
    const waiting = (state.waiting ??= []);
    const admission = new Promise<Reservation>((resolve, reject) => {
      waiting.push({ keyName, limits, estimate, resolve, reject });
    });
    if (!loading) this.load(state, limits, now);
    return admission;
  }

  headers(keyId: string, limits: KeyLimits): Readonly<Record<string, string>> {
    const { rpm, tpm } = limits;
    if (rpm == null && tpm == null) return NO_HEADERS;
    const state = this.states.get(keyId);
    const now = this.now();
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

  forget(keyId: string): void {
    const state = this.states.get(keyId);
    if (state === undefined) return;
    state.forgotten = true;
    this.states.delete(keyId);
  }

  /** Decides one request against loaded state: admits and records it, or returns the 429. */
  private decide(state: KeyState, keyName: string, limits: KeyLimits, estimate: Estimate, now: number): Reservation | GatewayError {
    const tokens = nonNegative(estimate.tokens);
    const costUsd = nonNegative(estimate.costUsd);
    const { rpm, rpd, tpm, budgetTokens, budgetUsd } = limits;
    let fits = true;
    if (rpm != null) {
      state.requests ??= new RequestWindow(rpm);
      if (state.requests.count(now) >= rpm) fits = false;
    }
    if (rpd != null && state.day!.requests >= rpd) fits = false;
    if (tpm != null) {
      state.tokens ??= new TokenWindow();
      if (tokens > tpm || state.tokens.used(now) + tokens > tpm) fits = false;
    }
    const period = budgetPeriod(limits);
    if (period !== undefined) {
      const ledger = state.ledger(period)!;
      if (budgetTokens != null && ledger.tokens + ledger.reservedTokens + tokens > budgetTokens) fits = false;
      if (budgetUsd != null && exceedsUsd(ledger.costUsd + ledger.reservedUsd + costUsd, budgetUsd)) fits = false;
    }
    if (!fits) return limitRejection(state, keyName, limits, tokens, costUsd, now);

    if (rpm != null) state.requests!.push(now, rpm);
    const seq = tpm != null ? state.tokens!.push(now, tokens) : -1;
    // Every ledger the key has keeps counting, not only the ones today's limits read.
    state.day?.reserve(tokens, costUsd);
    state.month?.reserve(tokens, costUsd);
    state.total?.reserve(tokens, costUsd);
    return new TrackedReservation(this.states, state, seq, tokens, costUsd);
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
      for (const waiter of waiting) this.admit(state.keyId, waiter.keyName, waiter.limits, waiter.estimate).then(waiter.resolve, waiter.reject);
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
      const decision = this.decide(state, waiter.keyName, waiter.limits, waiter.estimate, now);
      if (decision instanceof GatewayError) waiter.reject(decision);
      else waiter.resolve(decision);
    }
  }
}

class TrackedReservation implements Reservation {
  private done = false;
  private readonly day: Ledger | undefined;
  private readonly month: Ledger | undefined;
  private readonly total: Ledger | undefined;

  constructor(
    private readonly states: ReadonlyMap<string, KeyState>,
    private readonly state: KeyState,
    /** The request's entry in the tpm window, -1 without tpm. */
    private readonly seq: number,
    private readonly tokens: number,
    private readonly costUsd: number,
  ) {
    this.day = state.day;
    this.month = state.month;
    this.total = state.total;
  }

  settle(actual: { tokens: number; costUsd: number }): void {
    if (this.done) return;
    this.done = true;
    const tokens = nonNegative(actual.tokens);
    const costUsd = nonNegative(actual.costUsd);
    if (this.seq >= 0) this.state.tokens!.adjust(this.seq, tokens);
    this.release();
    // Spend lands in the key's current ledgers, the period the request ends in, as the usage
    // database dates it. After forget() it goes to the key's new state, whose baseline was read
    // while this request was still running.
    const target = this.state.forgotten ? this.states.get(this.state.keyId) : this.state;
    target?.day?.record(tokens, costUsd);
    target?.month?.record(tokens, costUsd);
    target?.total?.record(tokens, costUsd);
  }

  refund(): void {
    if (this.done) return;
    this.done = true;
    if (this.seq >= 0) this.state.tokens!.adjust(this.seq, 0);
    this.release();
  }

  private release(): void {
    this.day?.release(this.tokens, this.costUsd);
    this.month?.release(this.tokens, this.costUsd);
    this.total?.release(this.tokens, this.costUsd);
  }
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
