import { MINUTE_MS } from './periods.js';

/**
 * Exact 60 s sliding windows. An admission at time t occupies its window until t + 60 s
 * (exclusive), so a slot frees exactly when the oldest admission turns 60 s old. Both windows
 * evict lazily from the front on every read, so each admission is pushed and evicted once:
 * O(1) amortised per request, with no timers.
 */

const INITIAL_CAPACITY = 8;

/** The timestamps of the admissions of the last minute, oldest first; at most `limit` of them. */
export class RequestWindow {
  private times: Float64Array;
  private head = 0;
  private size = 0;

  constructor(limit: number) {
    this.times = new Float64Array(Math.max(1, Math.min(INITIAL_CAPACITY, limit)));
  }

  /** Admissions still inside the window at `now`. */
  count(now: number): number {
    const cutoff = now - MINUTE_MS;
    const times = this.times;
    while (this.size > 0 && times[this.head]! <= cutoff) {
      this.head = this.head + 1 === times.length ? 0 : this.head + 1;
      this.size -= 1;
    }
    return this.size;
  }

  /** When the `index`-th oldest admission (0 = oldest) leaves the window; call count() first, index < count. */
  expiryOf(index: number): number {
    return this.times[(this.head + index) % this.times.length]! + MINUTE_MS;
  }

  /** Milliseconds until the window is empty (call count() first); 0 when it is. */
  msUntilEmpty(now: number): number {
    return this.size === 0 ? 0 : this.expiryOf(this.size - 1) - now;
  }

  /**
   * Records an admission. The buffer grows geometrically but never past `limit`, so an idle
   * key with a large rpm costs a few bytes, and a busy one at most 8 bytes per rpm.
   */
  push(now: number, limit: number): void {
    if (this.size === this.times.length) this.grow(Math.max(this.size + 1, Math.min(this.size * 2, limit)));
    const tail = (this.head + this.size) % this.times.length;
    this.times[tail] = now;
    this.size += 1;
  }

  private grow(capacity: number): void {
    const next = new Float64Array(capacity);
    for (let i = 0; i < this.size; i += 1) next[i] = this.times[(this.head + i) % this.times.length]!;
    this.times = next;
    this.head = 0;
  }
}

/**
 * Token amounts admitted in the last minute with their running sum. Entries are addressed by a
 * sequence number so a reservation can later be settled or refunded in place; an entry that has
 * already left the window is no longer adjusted.
 */
export class TokenWindow {
  private times = new Float64Array(INITIAL_CAPACITY);
  private amounts = new Float64Array(INITIAL_CAPACITY);
  /** Capacity - 1; the capacity is a power of two so a sequence number maps to its slot by masking. */
  private mask = INITIAL_CAPACITY - 1;
  private headSeq = 0;
  private tailSeq = 0;
  private sum = 0;
  /** Bumped on every change, to reuse the last freeAt() walk while a key is rejected repeatedly. */
  private version = 0;
  private memoVersion = -1;
  private memoNeed = 0;
  private memoAt = 0;

  /** Tokens inside the window at `now`. */
  used(now: number): number {
    const cutoff = now - MINUTE_MS;
    const mask = this.mask;
    while (this.headSeq < this.tailSeq && this.times[this.headSeq & mask]! <= cutoff) {
      this.sum -= this.amounts[this.headSeq & mask]!;
      this.headSeq += 1;
      this.version += 1;
    }
    // Clears any rounding left by non-integer amounts.
    if (this.headSeq === this.tailSeq) this.sum = 0;
    return this.sum;
  }

  /** Adds an entry and returns its sequence number. */
  push(now: number, amount: number): number {
    if (this.tailSeq - this.headSeq > this.mask) this.grow();
    const slot = this.tailSeq & this.mask;
    this.times[slot] = now;
    this.amounts[slot] = amount;
    this.sum += amount;
    this.version += 1;
    return this.tailSeq++;
  }

  /** Sets the amount of entry `seq` if it is still in the window (settle: actual tokens; refund: 0). */
  adjust(seq: number, amount: number): void {
    if (seq < this.headSeq || seq >= this.tailSeq) return;
    const slot = seq & this.mask;
    this.sum += amount - this.amounts[slot]!;
    this.amounts[slot] = amount;
    this.version += 1;
  }

  /**
   * The earliest time at which at least `need` tokens have left the window (call used() first).
   * Walks from the oldest entry, so it costs the entries that must expire; it runs only when a
   * request is rejected, and a repeated rejection with the same window reuses the last answer.
   */
  freeAt(need: number): number {
    if (this.memoVersion === this.version && this.memoNeed === need) return this.memoAt;
    let freed = 0;
    // Not reached when need <= used(), which is how the tracker calls it.
    let at = this.lastExpiry();
    for (let seq = this.headSeq; seq < this.tailSeq; seq += 1) {
      freed += this.amounts[seq & this.mask]!;
      if (freed >= need) {
        at = this.times[seq & this.mask]! + MINUTE_MS;
        break;
      }
    }
    this.memoVersion = this.version;
    this.memoNeed = need;
    this.memoAt = at;
    return at;
  }

  /** Milliseconds until the window is empty (call used() first); 0 when it is. */
  msUntilEmpty(now: number): number {
    return this.headSeq === this.tailSeq ? 0 : this.lastExpiry() - now;
  }

  private lastExpiry(): number {
    return this.times[(this.tailSeq - 1) & this.mask]! + MINUTE_MS;
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const mask = capacity - 1;
    const times = new Float64Array(capacity);
    const amounts = new Float64Array(capacity);
    for (let seq = this.headSeq; seq < this.tailSeq; seq += 1) {
      times[seq & mask] = this.times[seq & this.mask]!;
      amounts[seq & mask] = this.amounts[seq & this.mask]!;
    }
    this.times = times;
    this.amounts = amounts;
    this.mask = mask;
  }
}
