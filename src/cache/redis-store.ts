import type { SharedRedis } from '../storage/redis.js';
import { decodeAnswer, encodeAnswer, type CachedAnswer } from './cached-answer.js';
import type { CacheStore } from './cache-store.js';

/**
 * A read that has not answered in this long is a miss: the request goes upstream instead of
 * waiting on a slow Redis (the connection's own command timeout, 1 s, is for everything else).
 */
export const CACHE_READ_TIMEOUT_MS = 250;

/**
 * The store every instance shares when `redis_url` is set: `GET` / `SET … PX ttl` of
 * `cache:<hash>` under the gateway's `redis_prefix`, values in `encodeAnswer`'s binary form.
 * Redis down, slow or answering garbage is a miss on read and a skipped write: never an error or
 * a hang for the client. Entries expire in Redis itself; its `maxmemory` policy bounds the rest.
 */
export class RedisStore implements CacheStore {
  constructor(
    private readonly redis: SharedRedis,
    private readonly readTimeoutMs = CACHE_READ_TIMEOUT_MS,
  ) {}

  async get(key: string): Promise<CachedAnswer | undefined> {
    // Without an offline queue a command fails at once while down; skipping it saves the rejection.
    if (!this.redis.healthy) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.readTimeoutMs);
    });
    try {
      const value = await Promise.race([this.redis.client.getBuffer(redisKey(key)), timeout]);
      return value === null ? undefined : decodeAnswer(value);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  set(key: string, answer: CachedAnswer, ttlMs: number): void {
    if (!this.redis.healthy || ttlMs <= 0) return;
    this.redis.client.set(redisKey(key), encodeAnswer(answer), 'PX', Math.ceil(ttlMs)).catch(() => undefined);
  }
}

const redisKey = (key: string): string => `cache:${key}`;
