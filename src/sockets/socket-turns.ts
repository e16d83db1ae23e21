import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Caller } from '../auth/authenticator.js';
import type { RecordedErrorCode } from '../errors/index.js';
import type { PriceTable } from '../metering/pricing.js';
import type { Meter, UsageSource } from '../metering/usage-event.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Tracer } from '../observability/tracing.js';
import type { Ticket } from '../policy/admission.js';
import type { Usage } from '../streaming/usage.js';
import type { RelayEnding } from './socket-relay.js';

/** One response on a long-lived socket: admitted, sent, answered — metered on its own. */
export interface SocketTurn {
  readonly requestId: string;
  readonly startedAt: number;
  /** The model as sent upstream. */
  readonly model: string | undefined;
  /** The event that asked for it, for estimates when no usage comes. */
  readonly body: unknown;
  ticket: Ticket | undefined;
  /** `stream_id` of the request (Responses WebSocket lanes). */
  readonly streamId: string | undefined;
  responseId: string | undefined;
}

/** How a turn ended. */
export interface TurnOutcome {
  status: number;
  usage: Usage | undefined;
  errorCode?: RecordedErrorCode;
  /** The client left (or the upstream dropped) before the turn's usage came. */
  cut?: 'client' | 'upstream';
  /** What a cut turn is charged: the most it could cost. */
  estimated?: Usage;
}

/** What a socket's turns share: who, where, and where records go. */
export interface SocketContext {
  readonly caller: Caller;
  /** The route in usage records and log lines, e.g. `/v1/responses`. */
  readonly route: string;
  readonly upstream: string;
  readonly meter: Meter;
  readonly prices: PriceTable;
  readonly logger: Logger;
  readonly metrics?: GatewayMetrics | undefined;
  readonly tracing?: Tracer | undefined;
  /** The handshake's headers, read only for its `traceparent` when tracing is on. */
  readonly handshakeHeaders?: IncomingHttpHeaders | undefined;
}

/** A WebSocket's route as a metrics label (`WEBSOCKET /v1/responses`) and its endpoint kind. */
export function socketLabels(route: string): { route: string; kind: string } {
  return SOCKET_LABELS[route] ?? UNMATCHED;
}

const SOCKET_LABELS: Readonly<Record<string, { route: string; kind: string }>> = {
  '/v1/responses': { route: 'WEBSOCKET /v1/responses', kind: 'responses' },
  '/v1/realtime': { route: 'WEBSOCKET /v1/realtime', kind: 'realtime' },
};
const UNMATCHED = { route: 'WEBSOCKET unmatched', kind: 'other' };

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * Writes one turn's usage record and log line — the socket counterpart of pipeline/finish.ts:
 * settles its reservation with what the upstream reported (or refunds it when nothing was
 * produced); a turn cut before its usage came is charged the estimate its protocol gives (the
 * most it could cost), as an HTTP request the client left after the upstream had it.
 */
export function recordTurn(context: SocketContext, turn: SocketTurn, outcome: TurnOutcome): void {
  const usage = outcome.usage ?? outcome.estimated;
  const source: UsageSource = outcome.usage ? 'upstream' : usage ? 'estimated' : 'none';
  const costUsd = usage ? context.prices.cost(turn.model, usage) : null;
  if (turn.ticket) {
    if (usage) turn.ticket.settle({ tokens: usage.totalTokens, costUsd: costUsd ?? 0 });
    else turn.ticket.refund();
    turn.ticket = undefined;
  }
  const latencyMs = performance.now() - turn.startedAt;
  const aborted = outcome.cut === 'client';
  context.meter.record({
    requestId: turn.requestId,
    time: new Date(),
    keyId: context.caller.key?.id,
    caller: context.caller.name,
    route: context.route,
    model: turn.model,
    upstream: context.upstream,
    status: outcome.status,
    usage,
    costUsd,
    usageSource: source,
    latencyMs,
    ttfbMs: undefined,
    aborted,
    errorCode: outcome.errorCode,
  });
  context.logger.info(
    {
      reqId: turn.requestId,
      method: 'WEBSOCKET',
      route: context.route,
      status: outcome.status,
      caller: context.caller.name,
      model: turn.model,
      upstream: context.upstream,
      latency_ms: round(latencyMs),
      aborted: aborted || undefined,
      error: outcome.errorCode,
    },
    'request',
  );
  if (context.metrics !== undefined) {
    const labels = socketLabels(context.route);
    context.metrics.observe({ route: labels.route, kind: labels.kind, status: outcome.status, model: turn.model, caller: context.caller.name, upstream: context.upstream, totalMs: latencyMs, upstreamMs: undefined, ttfbMs: undefined, overheadMs: undefined, attempts: undefined, usage, costUsd, errorCode: outcome.errorCode });
  }
  if (context.tracing?.enabled === true) {
    context.tracing.turn({ requestId: turn.requestId, startedAt: turn.startedAt, route: context.route, model: turn.model, caller: context.caller.name, upstream: context.upstream, status: outcome.status, usage: outcome.usage, errorCode: outcome.errorCode, handshakeHeaders: context.handshakeHeaders });
  }
}

/**
 * Records the turns a socket's end cut short, each charged `estimate(turn)` (the most it could
 * cost): 499 when the client left, 502 `upstream_unreachable` when the upstream dropped.
 */
export function recordCutTurns(context: SocketContext, turns: Iterable<SocketTurn>, ending: RelayEnding, estimate: (turn: SocketTurn) => Usage): void {
  const cut = ending.by === 'upstream' ? 'upstream' : 'client';
  for (const turn of turns) {
    recordTurn(context, turn, { status: cut === 'upstream' ? 502 : 499, usage: undefined, errorCode: cut === 'upstream' ? 'upstream_unreachable' : undefined, cut, estimated: estimate(turn) });
  }
}
