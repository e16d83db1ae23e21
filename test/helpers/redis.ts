import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** Redis for a test that cannot run without it, and whether that test skips here. */
export interface RequiredRedis {
  /** The server's URL (TEST_REDIS_URL); empty when the tests skip. */
  url: string;
  /** A reason to pass as `skip`, or false when the tests run (and fail without a server). */
  skip: string | false;
}

/**
 * Redis from TEST_REDIS_URL, for tests that need it. Unset, the tests skip saying so — except in
 * CI (CI=true), which always provides the server (.ci/run): there they run against
 * redis://127.0.0.1:6379 and fail when it is not there, so a CI that lost Redis cannot pass by skipping.
 */
export function requireRedis(env: NodeJS.ProcessEnv = process.env): RequiredRedis {
  const url = env['TEST_REDIS_URL'];
  if (url !== undefined && url !== '') return { url, skip: false };
  if (env['CI'] === 'true') return { url: 'redis://127.0.0.1:6379', skip: false };
  return { url: '', skip: 'needs Redis: set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run it' };
}

/** A prefix no other test uses, so parallel test files share one Redis without meeting. */
export function testRedisPrefix(): string {
  return `openai-api-test:${randomBytes(6).toString('hex')}:`;
}

/** Deletes every key under `prefix` (a test's own, from testRedisPrefix()). */
export async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
