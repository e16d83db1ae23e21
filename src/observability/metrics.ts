import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CounterFamily, HistogramFamily, type CounterSeries, type HistogramSeries } from './metric-families.js';
import { modelLabel, NONE, OTHER } from './model-labels.js';

/** Token counts as metering normalises them (streaming/usage.ts `Usage` has this shape). */
export interface TokenCounts {
  /** Prompt tokens, cached ones included. */
  readonly promptTokens: number;
  /** Completion tokens, reasoning ones included. */
  readonly completionTokens: number;
  readonly cachedTokens: number;
  readonly reasoningTokens: number;
}

/** One finished request (or WebSocket turn, or refused handshake), as pipeline/finish.ts and sockets/ report it. */
export interface RequestObservation {
  /** A bounded route label: `POST /v1/chat/completions`, `POST /api/chat`, `WEBSOCKET /v1/realtime`, `unmatched`. */
  readonly route: string;
  /** The endpoint kind: chat, completions, embeddings, responses, messages, realtime or other. */
  readonly kind: string;
  readonly status: number;
  /** The model as sent upstream; folded into the known set here. */
  readonly model: string | undefined;
  /** The caller's name (an app key's name, `access_token#N`, `anonymous`). */
  readonly caller: string | undefined;
  readonly upstream: string | undefined;
  readonly totalMs: number;
  /** Waiting for the upstream's response headers, retries included. */
  readonly upstreamMs: number | undefined;
  /** To the first body byte written to the client. */
  readonly ttfbMs: number | undefined;
  /** Gateway time to the response head, the upstream's wait excluded (x-openai-api-overhead-ms). */
  readonly overheadMs: number | undefined;
  /** Upstream attempts of a request that got an answer (1 = no retry). */
  readonly attempts: number | undefined;
  readonly usage: TokenCounts | undefined;
  readonly costUsd: number | null | undefined;
  readonly errorCode: string | undefined;
  /** What the response cache did (`hit`, `miss`, `bypass`); undefined when it had no part in the request. */
  readonly cache?: 'hit' | 'miss' | 'bypass' | undefined;
}

/** An upstream as the scrape reads it (upstream/pool-state.ts `UpstreamStateReport` has this shape). */
export interface UpstreamView {
  readonly name: string;
  readonly circuit: string;
  readonly inFlight: number;
  readonly errorRate: number;
  readonly keys: ReadonlyArray<{ readonly status: string; readonly requests: number; readonly errors: number }>;
}

/** What the scrape reads when it happens (collect callbacks), never on the request path. */
export interface MetricSources {
  /** The known model names (name → itself); called per request, so it must return a cached map. */
  knownModels(): ReadonlyMap<string, string>;
  upstreams(): readonly UpstreamView[];
  /** Responses the routes write themselves (relays, streams) and WebSockets: ActiveStreams.size. */
  activeRelays(): number;
  usageQueueDepth(): number;
  databaseUp(): boolean;
  /** Whether the shared Redis is reachable; not given without `redis_url` (no such gauge then). */
  redisUp?(): boolean;
  appKeys(): number;
}

/** Error codes that are a key's limits refusing a request (`openai_api_limit_rejections_total`). */
export const LIMIT_CODES: ReadonlySet<string> = new Set(['rate_limit_exceeded', 'budget_exceeded', 'model_not_allowed', 'model_not_priced', 'endpoint_not_allowed', 'origin_not_allowed', 'body_too_large']);

/**
 * Beyond this many label combinations of `openai_api_requests_total`, new combinations are
 * counted in one series whose every label is `other` (a bound on top of the folded labels).
 */
export const MAX_REQUEST_SERIES = 10_000;

/** Seconds; the request, upstream and first-byte histograms (reasoning models take minutes). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Seconds; the gateway's own share is usually well under a millisecond. */
const OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const FLUSH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'];
const statusClass = (status: number): string => STATUS_CLASSES[Math.floor(status / 100)] ?? 'other';

const CIRCUIT_STATES = ['closed', 'open', 'half-open'] as const;
const KEY_STATES = ['healthy', 'cooling', 'disabled'] as const;

/**
 * The series one label combination of a request updates: resolved when the combination is first
 * seen, or (those not every request has: upstream time, first byte, tokens) when first observed,
 * so no empty series is shown.
 */
class RequestCells {
  overhead: HistogramSeries | undefined = undefined;
  upstream: HistogramSeries | undefined = undefined;
  firstByte: HistogramSeries | undefined = undefined;
  retries: CounterSeries | undefined = undefined;
  tokens: TokenCells | undefined = undefined;

  constructor(
    /** route, kind, status_class, model, key, upstream */
    readonly labels: readonly [string, string, string, string, string, string],
    readonly requests: CounterSeries,
    readonly duration: HistogramSeries,
  ) {}
}

interface TokenCells {
  readonly input: CounterSeries;
  readonly output: CounterSeries;
  readonly cached: CounterSeries;
  readonly reasoning: CounterSeries;
  readonly cost: CounterSeries;
}

type Level<T> = Map<string, T>;

// Process metrics belong to the process, not to one gateway (tests run several in one process):
// one collector per process, started by the first scrape so a gateway nobody scrapes runs no
// event-loop monitor or GC observer.
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * The gateway's Prometheus metrics (docs/metrics.md). The request path calls `started()` and
 * `requestFinished()` (pipeline/finish.ts) or `observe()` (sockets/): one walk of a map per label
 * to the request's pre-resolved series, then field writes — no string built, no prom-client call.
 * Gauges of the pool, the usage queue and the database are read by collect callbacks when
 * Prometheus scrapes.
 */
export class GatewayMetrics {
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;
  readonly #own = new Registry();
  readonly #requests = new CounterFamily('openai_api_requests_total', 'Requests finished, by route, endpoint kind, status class, model, key and upstream.', ['route', 'kind', 'status_class', 'model', 'key', 'upstream']);
  readonly #duration = new HistogramFamily('openai_api_request_duration_seconds', 'Total time of a request, from its first byte in to its last byte out.', ['route', 'status_class', 'model'], LATENCY_BUCKETS);
  readonly #overhead = new HistogramFamily('openai_api_gateway_overhead_seconds', "The gateway's own time to the response head: total time to the head minus the wait for the upstream's response headers (x-openai-api-overhead-ms).", ['route', 'status_class'], OVERHEAD_BUCKETS);
  readonly #upstream = new HistogramFamily('openai_api_upstream_duration_seconds', "Time from sending upstream to the upstream's response headers, retries and their pauses included.", ['upstream', 'model'], LATENCY_BUCKETS);
  readonly #firstByte = new HistogramFamily('openai_api_time_to_first_byte_seconds', 'Time from the request to the first body byte written to the client (the first token of a stream).', ['route', 'model', 'upstream'], LATENCY_BUCKETS);
  readonly #retries = new CounterFamily('openai_api_upstream_retries_total', 'Upstream attempts beyond the first, of requests this upstream finally answered.', ['upstream']);
  readonly #tokens = new CounterFamily('openai_api_tokens_total', 'Tokens metered, by key, model and type (input includes cached, output includes reasoning).', ['key', 'model', 'type']);
  readonly #cost = new CounterFamily('openai_api_cost_usd_total', 'Cost in USD from the price table, by key and model.', ['key', 'model']);
  readonly #errors = new CounterFamily('openai_api_errors_total', 'Requests that ended with an error, by error code (the catalogue in docs/errors.md, or upstream_<status>).', ['code']);
  readonly #rejections = new CounterFamily('openai_api_limit_rejections_total', "Requests refused by a key's limits, by reason (the error code) and key.", ['reason', 'key']);
  readonly #cache = new CounterFamily('openai_api_cache_requests_total', 'Requests the response cache took part in: answered from it (hit), answered upstream and stored if whole (miss), or told or found not to use it (bypass).', ['result']);
  readonly #cacheResults = { hit: this.#cache.series(['hit']), miss: this.#cache.series(['miss']), bypass: this.#cache.series(['bypass']) };
  readonly #tree: Level<Level<Level<Level<Level<Level<RequestCells>>>>>> = new Map();
  readonly #errorSeries = new Map<string, CounterSeries>();
  #combinations = 0;
  #overflow: RequestCells | undefined;
  #inFlight = 0;
  #webSockets: () => number = () => 0;
  readonly #flushes: Histogram;
  readonly #flushFailures: Counter;
  readonly #written: Counter;
  readonly #dropped: Counter;
  #registry: Registry | undefined;

  constructor(
    private readonly sources: MetricSources,
    private readonly maxSeries = MAX_REQUEST_SERIES,
  ) {
    const registers = [this.#own];
    for (const family of [this.#requests, this.#duration, this.#overhead, this.#upstream, this.#firstByte, this.#retries, this.#tokens, this.#cost, this.#errors, this.#rejections, this.#cache]) family.registerIn(this.#own);
    // The gauges' collect callbacks are called with the gauge as `this`; these read this instance.
    const inFlight = (): number => this.#inFlight;
    const webSockets = (): number => this.#webSockets();
    const gauge = (name: string, help: string, labelNames: string[], collect: (this: Gauge) => void): Gauge => new Gauge({ name, help, labelNames, registers, collect });
    gauge('openai_api_requests_in_flight', 'HTTP requests received and not finished yet.', [], function () {
      this.set(inFlight());
    });
    gauge('openai_api_open_streams', 'Answers being relayed right now: HTTP bodies and event streams the gateway writes itself, and open WebSockets.', ['type'], function () {
      const sockets = webSockets();
      this.set({ type: 'http' }, Math.max(0, sources.activeRelays() - sockets));
      this.set({ type: 'websocket' }, sockets);
    });
    gauge('openai_api_upstream_circuit_state', "An upstream's circuit breaker: 1 for its current state (closed, open, half-open), 0 for the others.", ['upstream', 'state'], function () {
      this.reset();
      for (const upstream of sources.upstreams()) for (const state of CIRCUIT_STATES) this.set({ upstream: upstream.name, state }, upstream.circuit === state ? 1 : 0);
    });
    gauge('openai_api_upstream_keys', "An upstream's keys by state: healthy, cooling (rate-limited, resting) or disabled (refused by the upstream until a reload).", ['upstream', 'status'], function () {
      this.reset();
      for (const upstream of sources.upstreams()) for (const status of KEY_STATES) this.set({ upstream: upstream.name, status }, upstream.keys.filter((key) => key.status === status).length);
    });
    gauge('openai_api_upstream_in_flight', 'Upstream requests under way (an answer counts until its body is relayed).', ['upstream'], function () {
      this.reset();
      for (const upstream of sources.upstreams()) this.set({ upstream: upstream.name }, upstream.inFlight);
    });
    gauge('openai_api_upstream_error_ratio', 'Failed attempts over attempts in the circuit window (circuit_window).', ['upstream'], function () {
      this.reset();
      for (const upstream of sources.upstreams()) this.set({ upstream: upstream.name }, upstream.errorRate);
    });
    const poolCounter = (name: string, help: string, read: (key: UpstreamView['keys'][number]) => number): Counter =>
      new Counter({
        name,
        help,
        labelNames: ['upstream'],
        registers,
        collect() {
          this.reset();
          for (const upstream of sources.upstreams()) this.inc({ upstream: upstream.name }, upstream.keys.reduce((sum, key) => sum + read(key), 0));
        },
      });
    poolCounter('openai_api_upstream_attempts_total', 'Upstream attempts (each try of each request), since start or the last reload.', (key) => key.requests);
    poolCounter('openai_api_upstream_attempt_failures_total', 'Upstream attempts that failed (connection errors, timeouts, 5xx, 429), since start or the last reload.', (key) => key.errors);
    gauge('openai_api_usage_queue_depth', 'Usage records waiting to be written to the database.', [], function () {
      this.set(sources.usageQueueDepth());
    });
    gauge('openai_api_database_up', 'Whether the usage database is reachable (1) or down (0), as the usage writer and key store last saw it.', [], function () {
      this.set(sources.databaseUp() ? 1 : 0);
    });
    const redisUp = sources.redisUp;
    if (redisUp !== undefined) {
      gauge('openai_api_redis_up', 'Whether the shared Redis (redis_url) is reachable (1) or not (0).', [], function () {
        this.set(redisUp() ? 1 : 0);
      });
    }
    gauge('openai_api_app_keys', 'App keys in the key cache.', [], function () {
      this.set(sources.appKeys());
    });
    this.#flushes = new Histogram({ name: 'openai_api_usage_flush_duration_seconds', help: 'Time of one batched write of usage records (successful or not).', buckets: FLUSH_BUCKETS, registers });
    this.#flushFailures = new Counter({ name: 'openai_api_usage_flush_failures_total', help: 'Batched usage writes that failed (the records are kept and written later).', registers });
    this.#written = new Counter({ name: 'openai_api_usage_records_written_total', help: 'Usage records written to the database.', registers });
    this.#dropped = new Counter({ name: 'openai_api_usage_records_dropped_total', help: 'Usage records dropped because the queue was full while the database was down.', registers });
  }

  /** The open WebSockets (sockets/socket-server.ts `size`), read at scrape time. */
  watchWebSockets(count: () => number): void {
    this.#webSockets = count;
  }

  /** An HTTP request came in (app.ts onRequest); `requestFinished()` ends it. */
  started(): void {
    this.#inFlight++;
  }

  /** A request that `started()` ended: counted and observed. */
  requestFinished(observation: RequestObservation): void {
    this.#inFlight--;
    this.observe(observation);
  }

  /** A WebSocket turn or a refused handshake: counted and observed (not an HTTP request in flight). */
  observe(o: RequestObservation): void {
    const key = o.caller ?? NONE;
    const cells = this.#cells(o.route, o.kind, statusClass(o.status), modelLabel(this.sources.knownModels(), o.model), key, o.upstream ?? NONE);
    const labels = cells.labels;
    cells.requests.value++;
    cells.duration.observe(o.totalMs / 1000);
    if (o.overheadMs !== undefined) (cells.overhead ??= this.#overhead.series([labels[0], labels[2]])).observe(o.overheadMs / 1000);
    if (o.upstreamMs !== undefined) (cells.upstream ??= this.#upstream.series([labels[5], labels[3]])).observe(o.upstreamMs / 1000);
    if (o.ttfbMs !== undefined) (cells.firstByte ??= this.#firstByte.series([labels[0], labels[3], labels[5]])).observe(o.ttfbMs / 1000);
    if (o.attempts !== undefined && o.attempts > 1) (cells.retries ??= this.#retries.series([labels[5]])).value += o.attempts - 1;
    const usage = o.usage;
    const cost = typeof o.costUsd === 'number' ? o.costUsd : 0;
    if (usage !== undefined || cost > 0) {
      const tokens = (cells.tokens ??= this.#tokenCells(labels[4], labels[3]));
      if (usage !== undefined) {
        tokens.input.value += usage.promptTokens;
        tokens.output.value += usage.completionTokens;
        tokens.cached.value += usage.cachedTokens;
        tokens.reasoning.value += usage.reasoningTokens;
      }
      tokens.cost.value += cost;
    }
    if (o.errorCode !== undefined) this.#error(o.errorCode, key);
    if (o.cache !== undefined) this.#cacheResults[o.cache].value++;
  }

  /** The usage writer wrote (or failed to write) a batch (metering/usage-writer.ts). */
  usageFlushed(durationMs: number, records: number, failed: boolean): void {
    this.#flushes.observe(durationMs / 1000);
    if (failed) this.#flushFailures.inc();
    if (records > 0) this.#written.inc(records);
  }

  usageDropped(records: number): void {
    this.#dropped.inc(records);
  }

  /** The Prometheus text exposition of every metric, process metrics included. */
  text(): Promise<string> {
    this.#registry ??= Registry.merge([processMetrics(), this.#own]);
    return this.#registry.metrics();
  }

  /** Series of `openai_api_requests_total` (for tests of the bound). */
  get requestSeries(): number {
    return this.#requests.size;
  }

  #error(code: string, key: string): void {
    let series = this.#errorSeries.get(code);
    if (series === undefined) {
      series = this.#errors.series([code]);
      this.#errorSeries.set(code, series);
    }
    series.value++;
    if (LIMIT_CODES.has(code)) this.#rejections.series([code, key]).value++;
  }

  #cells(route: string, kind: string, status: string, model: string, key: string, upstream: string): RequestCells {
    const found = this.#tree.get(route)?.get(kind)?.get(status)?.get(model)?.get(key)?.get(upstream);
    if (found !== undefined) return found;
    if (this.#combinations >= this.maxSeries) return (this.#overflow ??= this.#resolve(OTHER, OTHER, OTHER, OTHER, OTHER, OTHER));
    const cells = this.#resolve(route, kind, status, model, key, upstream);
    level(level(level(level(level(this.#tree, route), kind), status), model), key).set(upstream, cells);
    this.#combinations++;
    return cells;
  }

  #resolve(route: string, kind: string, status: string, model: string, key: string, upstream: string): RequestCells {
    return new RequestCells([route, kind, status, model, key, upstream], this.#requests.series([route, kind, status, model, key, upstream]), this.#duration.series([route, status, model]));
  }

  #tokenCells(key: string, model: string): TokenCells {
    const tokens = (type: string): CounterSeries => this.#tokens.series([key, model, type]);
    return { input: tokens('input'), output: tokens('output'), cached: tokens('cached'), reasoning: tokens('reasoning'), cost: this.#cost.series([key, model]) };
  }
}

function level<T>(map: Map<string, Map<string, T>>, key: string): Map<string, T> {
  let next = map.get(key);
  if (next === undefined) {
    next = new Map();
    map.set(key, next);
  }
  return next;
}
