import { performance } from 'node:perf_hooks';
import type { FastifyRequest } from 'fastify';

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * The one structured line per request. Fields are an allowlist: ids, route, model, status and
 * timings. The path is the route pattern (never the query string, which may carry `key=`).
 */
export function logRequest(request: FastifyRequest, status: number, extra?: Record<string, unknown>): void {
  const ctx = request.ctx;
  if (ctx.logged) return;
  ctx.logged = true;
  request.log.info(
    {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status,
      caller: ctx.caller,
      model: ctx.model,
      upstream: ctx.upstream,
      latency_ms: round(performance.now() - ctx.startedAt),
      upstream_ms: ctx.upstreamMs === undefined ? undefined : round(ctx.upstreamMs),
      ...extra,
    },
    'request',
  );
}
