import type { Ledger } from './ledger.js';
import type { Demand, KeyLimits, Reservation } from './limit-store.js';
import type { PeriodKind } from './periods.js';
import type { RequestWindow, TokenWindow } from './sliding-window.js';
import type { TrackedReservation } from './tracked-reservation.js';

/** An admit() parked while the key's usage baseline loads; decided in arrival order afterwards. */
export interface Waiter {
  readonly keyName: string;
  readonly limits: KeyLimits;
  readonly demand: Demand;
  readonly resolve: (reservation: Reservation) => void;
  readonly reject: (error: unknown) => void;
}

/** Everything one instance knows about one key; created on the key's first limited request. */
export class KeyState {
  readonly keyId: string;
  requests: RequestWindow | undefined;
  tokens: TokenWindow | undefined;
  day: Ledger | undefined;
  month: Ledger | undefined;
  total: Ledger | undefined;
  /** Set while a baseline loads: every admit() for the key queues here, in order. */
  waiting: Waiter[] | undefined;
  /**
   * The in-flight reservations that hold a bound rather than their estimate, newest first, linked
   * through the reservations themselves (see TrackedReservation.tighten).
   */
  loose: TrackedReservation | undefined;
  /** Set by forget(): the state no longer belongs to the tracker. */
  forgotten = false;

  constructor(keyId: string) {
    this.keyId = keyId;
  }

  ledger(kind: PeriodKind): Ledger | undefined {
    return kind === 'day' ? this.day : kind === 'month' ? this.month : this.total;
  }

  install(ledger: Ledger): void {
    if (ledger.kind === 'day') this.day = ledger;
    else if (ledger.kind === 'month') this.month = ledger;
    else this.total = ledger;
  }
}

/** The period a key's budget runs over, or undefined when it has no budget. */
export function budgetPeriod(limits: KeyLimits): PeriodKind | undefined {
  if (limits.budgetTokens == null && limits.budgetUsd == null) return undefined;
  return limits.budgetPeriod ?? 'total';
}
