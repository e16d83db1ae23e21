import type { CachedAnswer } from './cached-answer.js';

/**
 * Where answers are kept, by cache key. `get` answers synchronously when it can (the in-process
 * store), so a lookup there adds no await; a shared store answers with a promise. A store never
 * throws to its caller: a failed read is a miss, a failed write is skipped.
 */
export interface CacheStore {
  get(key: string): CachedAnswer | undefined | Promise<CachedAnswer | undefined>;
  /** Fire and forget; `ttlMs` > 0. */
  set(key: string, answer: CachedAnswer, ttlMs: number): void;
}
