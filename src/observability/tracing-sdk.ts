import type { IncomingHttpHeaders } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type TextMapGetter, type TextMapSetter, type Tracer as OtelApiTracer } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type ReadableSpan, type Sampler, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from '../config/index.js';
import type { Logger } from './logger.js';
import { ATTR, operationName, requestErrorType, requestParameters, spanName, upstreamIdentity, usageAttributes, type SpanAttributes, type UpstreamIdentity } from './tracing-attributes.js';
import { linkTrace, type AttemptTarget, type AttemptTrace, type RequestTrace, type TracedRequest, type TracedTurn, type Tracer } from './tracing.js';

/**
 * OpenTelemetry traces, SDK half: loaded by `startTracing()` (tracing.ts) with a dynamic import()
 * only when tracing is configured. Its own TracerProvider, not the global one: nothing is
 * registered process-wide, and two gateways in one process (the tests) keep their own exporters.
 * Context is passed explicitly (request span → attempt spans), so no context manager is needed.
 */

type ExporterOptions = NonNullable<ConstructorParameters<typeof OTLPTraceExporter>[0]>;

const propagator = new W3CTraceContextPropagator();

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

const headerSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

function samplerOf(config: TracingConfig['sampler']): Sampler {
  switch (config.name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(config.ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.ratio) });
  }
}

/** How often a failing collector is reported in the log: once, then at most once a minute. */
const FAILURE_LOG_INTERVAL_MS = 60_000;

/**
 * The OTLP exporter, with its failures in the gateway's log (the SDK reports them only to its
 * global diagnostic logger, which the gateway does not install). Endpoint and headers are not logged.
 */
class LoggedExporter implements SpanExporter {
  #lastFailureLogged = -Infinity;

  constructor(
    private readonly exporter: SpanExporter,
    private readonly logger: Logger,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.exporter.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS && Date.now() - this.#lastFailureLogged >= FAILURE_LOG_INTERVAL_MS) {
        this.#lastFailureLogged = Date.now();
        this.logger.warn({ spans: spans.length, err: result.error?.message }, 'trace export failed; spans dropped');
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.exporter.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.exporter.forceFlush?.() ?? Promise.resolve();
  }
}

export class OtelTracer implements Tracer {
  readonly enabled = true;
  readonly #provider: BasicTracerProvider;
  readonly #tracer: OtelApiTracer;
  // Computed once per upstream config (a reload makes new ones).
  readonly #identities = new WeakMap<AttemptTarget, UpstreamIdentity>();

  constructor(config: TracingConfig, logger: Logger) {
    const exporter = new OTLPTraceExporter({ url: config.endpoint, headers: { ...config.headers }, timeoutMillis: config.timeoutMs, compression: config.compression as ExporterOptions['compression'] });
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName }),
      sampler: samplerOf(config.sampler),
      spanProcessors: [
        new BatchSpanProcessor(new LoggedExporter(exporter, logger), {
          scheduledDelayMillis: config.batch.scheduleDelayMs,
          exportTimeoutMillis: config.batch.exportTimeoutMs,
          maxQueueSize: config.batch.maxQueueSize,
          maxExportBatchSize: Math.min(config.batch.maxExportBatchSize, config.batch.maxQueueSize),
        }),
      ],
    });
    this.#tracer = this.#provider.getTracer('openai-api');
  }

  startRequest(request: TracedRequest, http: { readonly method: string; readonly id: string; readonly headers: IncomingHttpHeaders }): RequestTrace {
    const parent = propagator.extract(ROOT_CONTEXT, http.headers, headerGetter);
    const span = this.#tracer.startSpan(http.method, { kind: SpanKind.SERVER, attributes: { [ATTR.method]: http.method, [ATTR.requestId]: http.id } }, parent);
    const traced = new OtelRequestTrace(this, request, http.method, span, trace.setSpan(parent, span));
    linkTrace(request.signal, traced);
    return traced;
  }

  turn(turn: TracedTurn): void {
    const operation = 'chat';
    const attributes: SpanAttributes = { [ATTR.operation]: operation, [ATTR.keyName]: turn.caller, [ATTR.upstream]: turn.upstream, [ATTR.requestId]: turn.requestId, [ATTR.route]: turn.route };
    if (turn.model !== undefined) attributes[ATTR.requestModel] = turn.model;
    if (turn.usage !== undefined) usageAttributes(turn.usage, attributes);
    const errorType = requestErrorType(turn.status, turn.errorCode) ?? (turn.status >= 400 ? String(turn.status) : undefined);
    if (errorType !== undefined) attributes[ATTR.errorType] = errorType;
    // performance.now() values: the SDK reads numbers below the time origin as relative to it.
    const parent = turn.handshakeHeaders === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, turn.handshakeHeaders, headerGetter);
    const span = this.#tracer.startSpan(spanName(operation, turn.model, 'WEBSOCKET', turn.route), { kind: SpanKind.INTERNAL, attributes, startTime: turn.startedAt }, parent);
    if (errorType !== undefined) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }

  /** Name, address and provider of an upstream, computed once per config object. */
  identity(target: AttemptTarget): UpstreamIdentity {
    let identity = this.#identities.get(target);
    if (identity === undefined) {
      identity = upstreamIdentity(target.type, target.baseUrl);
      this.#identities.set(target, identity);
    }
    return identity;
  }

  startAttempt(name: string, attributes: SpanAttributes, parent: Context): Span {
    return this.#tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
  }

  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }
}

class OtelRequestTrace implements RequestTrace {
  /** The provider of the last attempt, for the request span. */
  #provider: string | undefined;

  constructor(
    private readonly tracer: OtelTracer,
    private readonly request: TracedRequest,
    private readonly method: string,
    private readonly span: Span,
    private readonly context: Context,
  ) {}

  attempt(target: AttemptTarget, method: string, attempt: number): AttemptTrace {
    const identity = this.tracer.identity(target);
    this.#provider = identity.provider;
    const { kind, model } = this.request;
    const operation = operationName(kind);
    const attributes: SpanAttributes = {
      [ATTR.method]: method,
      [ATTR.provider]: identity.provider,
      [ATTR.serverAddress]: identity.address,
      [ATTR.serverPort]: identity.port,
      [ATTR.upstream]: target.name,
      [ATTR.attempt]: attempt,
    };
    if (operation !== undefined) attributes[ATTR.operation] = operation;
    if (model !== undefined) attributes[ATTR.requestModel] = model;
    if (attempt > 1) attributes[ATTR.resendCount] = attempt - 1;
    const span = this.tracer.startAttempt(spanName(operation, model, method, undefined), attributes, this.context);
    return new OtelAttemptTrace(span, trace.setSpan(this.context, span));
  }

  end(status: number, route: string | undefined): void {
    const span = this.span;
    if (!span.isRecording()) {
      span.end();
      return;
    }
    const request = this.request;
    const operation = operationName(request.kind);
    span.updateName(spanName(operation, request.model, this.method, route));
    const attributes: SpanAttributes = { [ATTR.status]: status };
    if (route !== undefined) attributes[ATTR.route] = route;
    if (operation !== undefined) {
      attributes[ATTR.operation] = operation;
      requestParameters(request.kind, request.body, attributes);
    }
    if (this.#provider !== undefined) attributes[ATTR.provider] = this.#provider;
    if (request.model !== undefined) {
      const asked = (request.body as { model?: unknown } | undefined)?.model;
      attributes[ATTR.requestModel] = typeof asked === 'string' ? asked : request.model;
      // The model the gateway sent upstream (aliases applied) is the one that answered.
      if (request.upstream !== undefined && status < 400) attributes[ATTR.responseModel] = request.model;
    }
    if (request.usage !== undefined) usageAttributes(request.usage, attributes);
    if (request.caller !== undefined) attributes[ATTR.keyName] = request.caller.name;
    if (request.upstream !== undefined) attributes[ATTR.upstream] = request.upstream;
    if (request.attempts !== undefined) attributes[ATTR.attempts] = request.attempts;
    if (request.aborted) attributes[ATTR.aborted] = true;
    const errorType = requestErrorType(status, request.errorCode);
    if (errorType !== undefined) attributes[ATTR.errorType] = errorType;
    span.setAttributes(attributes);
    // A server span fails on 5xx only; a 4xx is the caller's mistake (HTTP semantic conventions).
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }
}

class OtelAttemptTrace implements AttemptTrace {
  #ended = false;

  constructor(
    private readonly span: Span,
    private readonly context: Context,
  ) {}

  inject(headers: Record<string, string>): void {
    propagator.inject(this.context, headers, headerSetter);
  }

  answered(status: number): void {
    this.span.setAttribute(ATTR.status, status);
    // A client span fails on 4xx and 5xx.
    if (status >= 400) {
      this.span.setAttribute(ATTR.errorType, String(status));
      this.span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }

  failed(errorType: string): void {
    this.span.setAttribute(ATTR.errorType, errorType);
    this.span.setStatus({ code: SpanStatusCode.ERROR });
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.span.end();
  }
}
