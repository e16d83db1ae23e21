import { entryBytes, type CachedAnswer } from './cached-answer.js';
import type { CacheStore } from './cache-store.js';

interface Slot {
  readonly answer: CachedAnswer;
  readonly bytes: number;
  /** ms since epoch. */
  readonly expiresAt: number;
}

/**
 * The in-process store: least recently used first out, within a byte budget (`cache_max_bytes`)
 * counted from the entries' bodies. A Map keeps insertion order, so re-inserting on a read makes
 * its first key the least recently used one; expired entries go when read or when eviction
 * reaches them. Reads and writes are synchronous.
 */
export class LruStore implements CacheStore {
  readonly #slots = new Map<string, Slot>();
  #bytes = 0;

  constructor(
    readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#slots.size;
  }

  get(key: string): CachedAnswer | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    this.#slots.delete(key);
    if (slot.expiresAt <= this.now()) {
      this.#bytes -= slot.bytes;
      return undefined;
    }
    this.#slots.set(key, slot);
    return slot.answer;
  }

  set(key: string, answer: CachedAnswer, ttlMs: number): void {
    const bytes = entryBytes(answer);
    this.delete(key);
    // An entry larger than the whole budget would empty the store and still not fit.
    if (bytes > this.maxBytes || ttlMs <= 0) return;
    this.#slots.set(key, { answer, bytes, expiresAt: this.now() + ttlMs });
    this.#bytes += bytes;
    for (const [oldest, slot] of this.#slots) {
      if (this.#bytes <= this.maxBytes) break;
      this.#slots.delete(oldest);
      this.#bytes -= slot.bytes;
    }
  }

  delete(key: string): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    this.#slots.delete(key);
    this.#bytes -= slot.bytes;
  }
}
