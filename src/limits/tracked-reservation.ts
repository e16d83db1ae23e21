import type { KeyState } from './key-state.js';
import { nonNegative, type Ledger } from './ledger.js';
import type { Demand, Reservation } from './limit-store.js';

/**
 * One admitted request's hold on its key's tpm window and ledgers, as LimitTracker made it.
 *
 * A reservation made from a bound (a Demand with `exact`) is "loose": it holds more than the
 * request's estimate, and stays linked in its key's `loose` list until it ends or is tightened.
 * Before the tracker decides a request on its estimate, it tightens every loose reservation of
 * the key, so that decision reads exactly the state the estimates alone would have made.
 */
export class TrackedReservation implements Reservation {
  private done = false;
  private readonly day: Ledger | undefined;
  private readonly month: Ledger | undefined;
  private readonly total: Ledger | undefined;
  /** Set while loose: what to ask for the estimate. */
  private demand: Demand | undefined;
  private previous: TrackedReservation | undefined;
  private next: TrackedReservation | undefined;

  constructor(
    private readonly states: ReadonlyMap<string, KeyState>,
    private readonly state: KeyState,
    /** The request's entry in the tpm window, -1 without tpm. */
    private readonly seq: number,
    private tokens: number,
    private costUsd: number,
    readonly headers: Readonly<Record<string, string>>,
    loose: Demand | undefined,
  ) {
    this.day = state.day;
    this.month = state.month;
    this.total = state.total;
    if (loose !== undefined) {
      this.demand = loose;
      this.next = state.loose;
      if (state.loose !== undefined) state.loose.previous = this;
      state.loose = this;
    }
  }

  settle(actual: { tokens: number; costUsd: number }): void {
    if (this.done) return;
    this.done = true;
    this.unlink();
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
    this.unlink();
    if (this.seq >= 0) this.state.tokens!.adjust(this.seq, 0);
    this.release();
  }

  keep(): void {
    if (!this.done && this.demand !== undefined) this.tighten();
  }

  /** Replaces the bound this loose reservation holds by the request's estimate, and unlinks it. */
  tighten(): void {
    const demand = this.demand!;
    this.unlink();
    const estimate = demand.exact!();
    const tokens = nonNegative(estimate.tokens);
    const costUsd = nonNegative(estimate.costUsd);
    if (this.seq >= 0) this.state.tokens!.adjust(this.seq, tokens);
    this.day?.adjust(tokens - this.tokens, costUsd - this.costUsd);
    this.month?.adjust(tokens - this.tokens, costUsd - this.costUsd);
    this.total?.adjust(tokens - this.tokens, costUsd - this.costUsd);
    this.tokens = tokens;
    this.costUsd = costUsd;
  }

  private unlink(): void {
    if (this.demand === undefined) return;
    this.demand = undefined;
    if (this.previous !== undefined) this.previous.next = this.next;
    else this.state.loose = this.next;
    if (this.next !== undefined) this.next.previous = this.previous;
    this.previous = undefined;
    this.next = undefined;
  }

  private release(): void {
    this.day?.release(this.tokens, this.costUsd);
    this.month?.release(this.tokens, this.costUsd);
    this.total?.release(this.tokens, this.costUsd);
  }
}

/** Tightens every loose reservation of the key (see TrackedReservation). */
export function tightenAll(state: KeyState): void {
  while (state.loose !== undefined) state.loose.tighten();
}
