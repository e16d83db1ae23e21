import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { RecentRequest } from '../../../src/admin/console-types.js';
import { latencyOf } from '../../../src/admin/latency.js';

const entry = (second: number, latency: number, overhead: number | null, upstream: number | null, caller: string | null = 'app'): RecentRequest => ({
  time: new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString(),
  request_id: `r${second}`, method: 'POST', path: '/v1/chat/completions', status: 200, caller, model: 'm', upstream: upstream === null ? null : 'u',
  latency_ms: latency, upstream_ms: upstream, overhead_ms: overhead, total_tokens: null, error: null,
});

it('gives nearest-rank p50 and p95 over the requests since the time asked, leaving out those of no key and no upstream', () => {
  // Newest first, as the tail keeps them: latencies 1..20 ms, overhead a tenth, upstream the rest.
  const recent = Array.from({ length: 20 }, (_, i) => entry(59 - i, i + 1, (i + 1) / 10, ((i + 1) * 9) / 10)).concat([entry(1, 5000, 5000, null, null)]);
  const all = latencyOf(recent, new Date(Date.UTC(2026, 0, 1)));
  assert.equal(all.samples, 20, 'the health check (no key, no upstream) is not counted');
  assert.deepEqual(all.latency_ms, { p50: 10, p95: 19 });
  assert.deepEqual(all.overhead_ms, { p50: 1, p95: 1.9 });
  assert.equal(all.oldest, new Date(Date.UTC(2026, 0, 1, 0, 0, 40)).toISOString());
  const recentOnly = latencyOf(recent, new Date(Date.UTC(2026, 0, 1, 0, 0, 55)));
  assert.equal(recentOnly.samples, 5);
  assert.deepEqual(recentOnly.latency_ms, { p50: 3, p95: 5 });
  assert.deepEqual(latencyOf([], new Date(0)).upstream_ms, { p50: null, p95: null });
});
