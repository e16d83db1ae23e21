import type { LatencyAnswer, Percentiles, RecentRequest } from './console-types.js';

/** Nearest-rank percentile of sorted values: the smallest value with at least p % of them at or below it. */
function rank(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function percentiles(values: number[]): Percentiles {
  const sorted = values.sort((a, b) => a - b);
  return { p50: rank(sorted, 50), p95: rank(sorted, 95) };
}

/**
 * p50 and p95 of total time, gateway overhead (total minus the wait for the upstream) and
 * upstream time over the finished requests kept in memory (`recent`, newest first) since
 * `since`. Only requests of an app key or sent upstream count: health checks would otherwise
 * make the median. Usage records carry no overhead, so this is the one honest source of it;
 * the console says how many requests and how far back the figures cover.
 */
export function latencyOf(recent: readonly RecentRequest[], since: Date): LatencyAnswer {
  const from = since.toISOString();
  const kept = recent.filter((entry) => entry.time >= from && (entry.caller !== null || entry.upstream !== null));
  const numbers = (pick: (entry: RecentRequest) => number | null) => kept.map(pick).filter((value): value is number => value !== null);
  return {
    samples: kept.length,
    oldest: kept.at(-1)?.time ?? null,
    latency_ms: percentiles(numbers((entry) => entry.latency_ms)),
    overhead_ms: percentiles(numbers((entry) => entry.overhead_ms)),
    upstream_ms: percentiles(numbers((entry) => entry.upstream_ms)),
  };
}
