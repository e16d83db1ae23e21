import type { SharedRedis } from './redis.js';

/** A mark as stored: its value (the caller's encoding) and how long it has left. */
export interface StoredMark {
  readonly value: string;
  readonly ttlMs: number;
}

// Keeps the longer-lived mark: a short rest must not cut short a longer one (or a set-aside key).
const PUT_LONGER = `
local left = redis.call('PTTL', KEYS[1])
if left >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/**
 * What the instances sharing a Redis learned about upstream keys, one Redis string per key
 * (`upstream-key:<id>` under `redis_prefix`) expiring by itself. Read by id, never scanned: an
 * instance asks only about the keys it is configured with.
 */
export class UpstreamKeyMarks {
  constructor(private readonly redis: SharedRedis) {}

  async put(id: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.client.eval(PUT_LONGER, 1, redisKey(id), value, String(Math.max(1, Math.ceil(ttlMs))));
  }

  /** The live mark of each id, in order; undefined where there is none. */
  async read(ids: readonly string[]): Promise<Array<StoredMark | undefined>> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.client.pipeline();
    for (const id of ids) pipeline.get(redisKey(id)).pttl(redisKey(id));
    const results = (await pipeline.exec()) ?? [];
    return ids.map((_id, index) => {
      const [valueError, value] = results[index * 2] ?? [];
      const [ttlError, ttl] = results[index * 2 + 1] ?? [];
      if (valueError || ttlError || typeof value !== 'string' || typeof ttl !== 'number' || ttl <= 0) return undefined;
      return { value, ttlMs: ttl };
    });
  }

  async remove(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.client.del(...ids.map(redisKey));
  }
}

const redisKey = (id: string): string => `upstream-key:${id}`;
