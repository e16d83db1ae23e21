import { performance } from 'node:perf_hooks';
import type { FastifyRequest } from 'fastify';

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
      aborted: ctx.aborted || undefined,
      error: ctx.errorCode,
    },
    'request',
  );
}
