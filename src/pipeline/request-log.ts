import { performance } from 'node:perf_hooks';
import type { FastifyRequest } from 'fastify';
import type { RecentRequest } from '../admin/console-types.js';

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * The one structured line per request. Fields are an allowlist: ids, route, caller name, model,
 * status and timings. The route is the pattern (never the query string, which may carry `key=`).
 */
export function logRequest(request: FastifyRequest, status: number): void {
  const ctx = request.ctx;
  request.log.info(
    {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status,
      caller: ctx.caller?.name,
      model: ctx.model,
      upstream: ctx.upstream,
      attempts: ctx.attempts,
      latency_ms: round(performance.now() - ctx.startedAt),
      upstream_ms: ctx.upstreamMs === undefined ? undefined : round(ctx.upstreamMs),
      // The gateway's own time, as in the x-openai-api-overhead-ms header (fixed by finish when no head was written).
      overhead_ms: ctx.overheadMs === undefined ? undefined : round(ctx.overheadMs),
      aborted: ctx.aborted || undefined,
      error: ctx.errorCode,
      cache: ctx.cache,
    },
    'request',
  );
  tails.get(request.server.server)?.push({
    time: new Date().toISOString(),
    request_id: request.id,
    method: request.method,
    path: request.url.split('?')[0]!,
    status,
    caller: ctx.caller?.name ?? null,
    model: ctx.model ?? null,
    upstream: ctx.upstream ?? null,
    latency_ms: Math.round(performance.now() - ctx.startedAt),
    upstream_ms: ctx.upstreamMs === undefined ? null : round(ctx.upstreamMs),
    overhead_ms: ctx.overheadMs === undefined ? null : round(ctx.overheadMs),
    total_tokens: ctx.usage?.totalTokens ?? null,
    error: ctx.errorCode ?? null,
  });
}

export type { RecentRequest };

/** The last `capacity` finished requests, oldest overwritten first (for the admin console's tail). */
export class RecentRequests {
  private readonly ring: RecentRequest[] = [];
  private next = 0;

  constructor(readonly capacity = 1000) {}

  push(entry: RecentRequest): void {
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Newest first, at most `limit`. */
  latest(limit = this.capacity): RecentRequest[] {
    const out: RecentRequest[] = [];
    for (let i = 1; i <= Math.min(limit, this.ring.length); i++) out.push(this.ring[(this.next - i + this.ring.length) % this.ring.length]!);
    return out;
  }
}

// Keyed by the Node server, which every encapsulated Fastify scope of one gateway shares: the
// finisher that calls logRequest is built without a handle on the tail, and a WeakMap keeps two
// gateways in one process (tests) apart without a global list.
const tails = new WeakMap<object, RecentRequests>();

/** Feeds every request the server's log line is written for into `tail`. */
export function tailRequests(server: object, tail: RecentRequests): void {
  tails.set(server, tail);
}
