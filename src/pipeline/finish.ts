import type { FastifyRequest } from 'fastify';
import { performance } from 'node:perf_hooks';
import { abortedEstimate, estimateUsage } from '../metering/estimate-usage.js';
import type { PriceTable } from '../metering/pricing.js';
import type { Meter, UsageSource } from '../metering/usage-event.js';
import { canonicalPath } from '../http/canonical-path.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { classify } from '../policy/endpoints.js';
import { logRequest } from './request-log.js';
import type { Usage } from '../streaming/usage.js';

export interface RequestFinisher {
  (request: FastifyRequest, status: number): void;
}

/**
 * The one writer of a request's usage record and log line, called by the pipeline's one exit
 * (and by the server's response hook for requests no pipeline route took): settles its
 * reservation (or refunds it when nothing was produced), records its usage — the upstream's
 * numbers, or an estimate for a stream cut before its usage event, a batch, a request the client
 * left after the upstream had it — and writes its log line. A background response's usage comes
 * later and is recorded on its own (ownership/background-usage.ts), not here. With `metrics`,
 * the request is counted and timed there too (observability/metrics.ts).
 */
export function requestFinisher(meter: Meter, prices: () => PriceTable, metrics?: GatewayMetrics): RequestFinisher {
  const routeLabel = routeLabels();
  return (request, status) => {
    const ctx = request.ctx;
    if (!ctx.finishing()) return;
    const now = performance.now();
    const latencyMs = now - ctx.startedAt;
    // A request that ends without a head (the client left) has its overhead up to now.
    ctx.overheadMs ??= ctx.overheadAt(now);
    let usage: Usage | undefined = ctx.usage;
    let source: UsageSource = usage ? 'upstream' : 'none';
    let costUsd: number | null | undefined;
    if (ctx.cache === 'hit') {
      // Answered from the response cache: the stored answer's tokens, all of the prompt cached, at no cost.
      if (usage !== undefined) usage = { ...usage, cachedTokens: usage.promptTokens };
      source = 'cache';
      costUsd = 0;
    } else if (ctx.usageDeferred) {
      // A background response: its usage gets its own record once it is seen, charged to the
      // reservation this request handed over (ownership/background-usage.ts).
    } else if (!usage && ctx.textSeen && ctx.kind !== 'other') {
      usage = estimateUsage(ctx.kind, ctx.body, ctx.model, ctx.textSeen());
      source = 'estimated';
    } else if (!usage && ctx.charge) {
      usage = ctx.charge.usage;
      costUsd = ctx.charge.costUsd;
      source = 'estimated';
    } else if (!usage && ctx.aborted && ctx.sent && ctx.kind !== 'other') {
      // The client left after the upstream had the request: the upstream works (and bills) on,
      // so the key is charged the most the request could cost — its prompt and its max_tokens.
      usage = abortedEstimate(ctx.kind, ctx.body, ctx.model);
      source = 'estimated';
    }
    if (costUsd === undefined) costUsd = usage ? prices().cost(ctx.model, usage) : null;
    if (ctx.ticket) {
      if (usage) ctx.ticket.settle({ tokens: usage.totalTokens, costUsd: costUsd ?? 0 });
      else ctx.ticket.refund();
    }
    if (ctx.caller) {
      meter.record({
        requestId: request.id,
        time: new Date(),
        keyId: ctx.caller.key?.id,
        caller: ctx.caller.name,
        route: request.routeOptions.url === '/v1/*' ? request.url.split('?')[0]! : (request.routeOptions.url ?? request.url.split('?')[0]!),
        model: ctx.model,
        upstream: ctx.upstream,
        status,
        usage,
        costUsd,
        usageSource: source,
        latencyMs,
        ttfbMs: ctx.firstByteAt === undefined ? undefined : ctx.firstByteAt - ctx.startedAt,
        aborted: ctx.aborted,
        errorCode: ctx.errorCode,
        conversationId: ctx.conversationId,
      });
    }
    metrics?.requestFinished({
      route: routeLabel(request),
      kind: ctx.kind,
      status,
      model: ctx.model,
      caller: ctx.caller?.name,
      upstream: ctx.upstream,
      totalMs: latencyMs,
      upstreamMs: ctx.upstreamMs,
      ttfbMs: ctx.firstByteAt === undefined ? undefined : ctx.firstByteAt - ctx.startedAt,
      overheadMs: ctx.overheadMs,
      attempts: ctx.attempts,
      usage,
      costUsd,
      errorCode: ctx.errorCode,
      cache: ctx.cache,
    });
    ctx.trace?.end(status, request.routeOptions.url);
    logRequest(request, status);
  };
}

/**
 * A request's route as a bounded metrics label: the endpoint table's name under /v1 (`POST
 * /v1/chat/completions`, `GET /v1/files/{id}`; `POST /v1/*` for endpoints the table does not
 * know), `METHOD pattern` for the other routes, `unmatched` for paths no route serves. The
 * labels are kept per pattern and method, so a request builds no string for its label.
 */
function routeLabels(): (request: FastifyRequest) => string {
  const byPattern = new Map<string, Map<string, string>>();
  const label = (method: string, pattern: string): string => {
    let byMethod = byPattern.get(pattern);
    if (byMethod === undefined) byPattern.set(pattern, (byMethod = new Map()));
    let found = byMethod.get(method);
    if (found === undefined) byMethod.set(method, (found = `${method} ${pattern}`));
    return found;
  };
  return (request) => {
    const endpoint = request.ctx.endpoint;
    if (endpoint !== undefined) return endpoint;
    const pattern = request.routeOptions.url;
    if (pattern === undefined) return 'unmatched';
    if (pattern === '/v1/*') {
      // Refused before the route classified it (no key, a bad path): classified here, off the success path.
      try {
        const found = classify(request.method, canonicalPath(request.url).path.slice('/v1'.length));
        if (found.known) return found.endpoint.name;
      } catch {
        // A path the route refuses: the pattern's label.
      }
    }
    return label(request.method, pattern);
  };
}
