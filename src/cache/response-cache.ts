import type { SharedRedis } from '../storage/redis.js';
import type { CachedAnswer } from './cached-answer.js';
import type { CacheSettings } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { LruStore } from './lru-store.js';
import { RedisStore } from './redis-store.js';

/** The sizes of the cache, fixed at start-up (config `cache_max_bytes`, `cache_max_entry_bytes`). */
export interface CacheLimits {
  /** The in-process store's budget (Redis is bounded by its own maxmemory). */
  readonly maxBytes: number;
  /** Answers larger than this are not stored (nor recorded past it). */
  readonly maxEntryBytes: number;
}

/** The store every request of the gateway shares, for as long as the process runs (reloads keep it). */
export function openCacheStore(limits: CacheLimits, redis: SharedRedis | undefined): CacheStore {
  return redis === undefined ? new LruStore(limits.maxBytes) : new RedisStore(redis);
}

/**
 * The response cache as one runtime snapshot sees it: the shared store, the owner's settings of
 * this configuration, and the size limit of an entry. Knows nothing of requests: the pipeline's
 * cache step (pipeline/cache-step.ts) decides, keys and records.
 */
export class ResponseCache {
  constructor(
    readonly store: CacheStore,
    readonly settings: CacheSettings,
    readonly maxEntryBytes: number,
  ) {}

  /** The entry under `key` no older than `maxAgeMs` (when given); synchronous for the in-process store. */
  get(key: string, maxAgeMs: number | undefined): CachedAnswer | undefined | Promise<CachedAnswer | undefined> {
    const found = this.store.get(key);
    if (maxAgeMs === undefined) return found;
    if (found instanceof Promise) return found.then((answer) => fresh(answer, maxAgeMs));
    return fresh(found, maxAgeMs);
  }

  set(key: string, answer: CachedAnswer, ttlMs: number): void {
    if (answer.body.length > this.maxEntryBytes) return;
    this.store.set(key, answer, ttlMs);
  }
}

function fresh(answer: CachedAnswer | undefined, maxAgeMs: number): CachedAnswer | undefined {
  return answer !== undefined && Date.now() - answer.storedAt <= maxAgeMs ? answer : undefined;
}
