import type { IncomingHttpHeaders } from 'node:http';
import type { TracingConfig } from '../config/index.js';
import type { EndpointKind } from '../domain/endpoint-kind.js';
import type { Logger } from './logger.js';

/**
 * OpenTelemetry traces, front half: what the request path calls. Nothing here imports
 * OpenTelemetry; the SDK (tracing-sdk.ts) is loaded by `startTracing()` with a dynamic import()
 * only when an OTLP endpoint is configured. With tracing off the hot path checks
 * `tracer.enabled` (a constant false) and allocates nothing.
 */

/** What a request span reads from the request it traces (pipeline's GatewayRequest, structurally). */
export interface TracedRequest {
  readonly kind: EndpointKind;
  /** The model as sent upstream (aliases applied). */
  readonly model: string | undefined;
  /** The parsed body: only its numeric parameters (max tokens, temperature…) are read, never content. */
  readonly body: unknown;
  readonly caller: { readonly name: string } | undefined;
  readonly upstream: string | undefined;
  readonly attempts: number | undefined;
  readonly usage: TracedUsage | undefined;
  readonly errorCode: string | undefined;
  readonly aborted: boolean;
  /** The request's abort signal: the upstream pool sees only it, so it links attempts to the request. */
  readonly signal: AbortSignal;
}

export interface TracedUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly cachedTokens: number;
  readonly cacheWriteTokens?: number;
  readonly reasoningTokens: number;
}

/** The upstream an attempt goes to (the pool member's config, structurally). */
export interface AttemptTarget {
  /** The upstream's name in config. */
  readonly name: string;
  readonly type: string;
  readonly baseUrl: string;
}

/** One upstream attempt's span, a child of its request's span. */
export interface AttemptTrace {
  /** Adds `traceparent` (and `tracestate`) naming this attempt's span to the outgoing headers. */
  inject(headers: Record<string, string>): void;
  /** The upstream answered with this status (4xx and 5xx mark the attempt failed). */
  answered(status: number): void;
  /** No answer: a connection error, a timeout, a cancellation (a low-cardinality name). */
  failed(errorType: string): void;
  end(): void;
}

/** One HTTP request's span: started when the request arrives, ended by its one exit. */
export interface RequestTrace {
  attempt(target: AttemptTarget, method: string, attempt: number): AttemptTrace;
  /** Ends the span with what the request came to; `route` is the route pattern (`/v1/*`), if any. */
  end(status: number, route: string | undefined): void;
}

/** A finished WebSocket turn, recorded as a span after the fact. */
export interface TracedTurn {
  readonly requestId: string;
  /** performance.now() when the turn began. */
  readonly startedAt: number;
  readonly route: string;
  readonly model: string | undefined;
  readonly caller: string;
  readonly upstream: string;
  readonly status: number;
  readonly usage: TracedUsage | undefined;
  readonly errorCode: string | undefined;
  /** The handshake's headers: a turn is the child of the `traceparent` the client opened the socket with. */
  readonly handshakeHeaders: IncomingHttpHeaders | undefined;
}

export interface Tracer {
  /** False: every other member is a no-op, and callers skip them after checking this. */
  readonly enabled: boolean;
  /** Starts the request's span, the child of the caller's `traceparent` when it sent a valid one. */
  startRequest(request: TracedRequest, http: { readonly method: string; readonly id: string; readonly headers: IncomingHttpHeaders }): RequestTrace;
  turn(turn: TracedTurn): void;
  /** Exports the spans still queued, then stops (part of the gateway's shutdown). */
  shutdown(): Promise<void>;
}

const NO_ATTEMPT: AttemptTrace = { inject() {}, answered() {}, failed() {}, end() {} };
const NO_REQUEST: RequestTrace = { attempt: () => NO_ATTEMPT, end() {} };

/** Tracing off: the SDK is never loaded. */
export const TRACING_OFF: Tracer = Object.freeze({
  enabled: false,
  startRequest: () => NO_REQUEST,
  turn() {},
  shutdown: () => Promise.resolve(),
});

let sdkLoaded = false;

/** Whether the OpenTelemetry SDK was loaded in this process (it is only when tracing is on). */
export function tracingLoaded(): boolean {
  return sdkLoaded;
}

/** The tracer the configuration asks for; loads the SDK only when tracing is on. */
export async function startTracing(config: TracingConfig, logger: Logger): Promise<Tracer> {
  if (!config.enabled) return TRACING_OFF;
  const { OtelTracer } = await import('./tracing-sdk.js');
  sdkLoaded = true;
  return new OtelTracer(config, logger);
}

/*
 * The upstream pool receives an UpstreamRequest, whose only per-request object is the request's
 * own abort signal: traces are found by it. `linked` keeps the lookup a boolean check in a
 * process that never traced.
 */
const bySignal = new WeakMap<AbortSignal, RequestTrace>();
let linked = false;

/** Makes `trace` the parent of the upstream attempts sent on `signal`. */
export function linkTrace(signal: AbortSignal, trace: RequestTrace): void {
  linked = true;
  bySignal.set(signal, trace);
}

/** The trace of the request sending on `signal`, if it is traced. */
export function traceOf(signal: AbortSignal): RequestTrace | undefined {
  return linked ? bySignal.get(signal) : undefined;
}
