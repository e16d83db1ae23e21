import { after } from 'node:test';
import type { UpstreamPool } from '../../src/upstream/pool.js';
import { FakeUpstream } from './fake-upstream.js';

/** Upstream timeouts short enough for tests, long enough for a loaded CI machine. */
export const TEST_TIMEOUTS = { connectTimeoutMs: 2_000, firstByteTimeoutMs: 5_000, idleTimeoutMs: 5_000 };

/**
 * Fake upstreams and pools for one test file, all closed after its last test: `fake()` starts a
 * fake upstream, `track(pool)` hands back the pool it is given.
 */
export function upstreamFixture(): { fake(): Promise<FakeUpstream>; track(pool: UpstreamPool): UpstreamPool } {
  const fakes: FakeUpstream[] = [];
  const pools: UpstreamPool[] = [];
  after(async () => {
    await Promise.all(pools.map((pool) => pool.close()));
    await Promise.all(fakes.map((fake) => fake.close()));
  });
  return {
    async fake() {
      const started = await FakeUpstream.start();
      fakes.push(started);
      return started;
    },
    track(pool) {
      pools.push(pool);
      return pool;
    },
  };
}
