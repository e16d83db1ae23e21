import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Caller } from '../auth/authenticator.js';
import { GatewayError, openAiErrorBody, toGatewayError } from '../errors/index.js';
import type { ActiveStreams } from '../http/active-streams.js';
import { canonicalPath } from '../http/canonical-path.js';
import { requestIdFor } from '../http/request-id.js';
import { markUpgraded } from '../http/upgraded-sockets.js';
import type { Meter } from '../metering/usage-event.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Tracer } from '../observability/tracing.js';
import { formatMs, OVERHEAD_HEADER } from '../observability/overhead.js';
import type { Ownership } from '../ownership/ownership.js';
import { confine } from '../policy/confine.js';
import { classify } from '../policy/endpoints.js';
import { checkedModel } from '../policy/model-name.js';
import { resolveAlias } from '../policy/model-rules.js';
import type { Runtime, RuntimeParts } from '../runtime.js';
import type { SocketEndpoint, SocketTarget } from '../upstream/pool.js';
import { RealtimeSocket } from './realtime-socket.js';
import { ResponsesSocket } from './responses-socket.js';
import { SocketRelay, type RelayPolicy } from './socket-relay.js';
import { socketLabels, type SocketContext } from './socket-turns.js';
import { openUpstreamSocket } from './upstream-socket.js';

export interface SocketServerDeps {
  runtime: Runtime;
  meter: Meter;
  logger: Logger;
  ownership: Ownership;
  streams: ActiveStreams;
  /** The largest client message, in bytes (`v1_body_limit`). */
  maxMessageBytes: number;
  metrics?: GatewayMetrics | undefined;
  /** A span per turn when tracing is on. */
  tracing?: Tracer | undefined;
}

/** The browser's way to authenticate a Realtime WebSocket (it cannot set headers): a subprotocol carrying the key. */
const KEY_PROTOCOL = 'openai-insecure-api-key.';
/** Caller headers that mean something to the upstream WebSocket. */
const FORWARDED_HEADERS = ['openai-beta'] as const;

/** A policy with the shutdown hooks both protocols have. */
interface Session {
  relay: SocketRelay;
  policy: ResponsesSocket | RealtimeSocket;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * WebSockets on the public port: Responses WebSocket mode (`GET /v1/responses`) and Realtime
 * (`GET /v1/realtime`). The handshake is a request like any other — authenticated, confined by
 * the endpoint table, its model checked — and the client's upgrade completes only once the
 * upstream's has, so an upstream refusal reaches the client as an HTTP answer with a status it
 * can act on. Every other upgrade is answered over HTTP: 426 on /v1 (no WebSocket there; Codex
 * falls back to HTTP at once), 404 elsewhere.
 */
export class SocketServer {
  readonly #wss: WebSocketServer;
  readonly #sessions = new Set<Session>();
  /** Handshakes about to be answered 101: the request id and the gateway's time so far, for the head. */
  readonly #accepting = new WeakMap<IncomingMessage, { requestId: string; overheadMs: number; resumedAt: number }>();
  #closing = false;

  constructor(
    server: Server,
    private readonly deps: SocketServerDeps,
  ) {
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: deps.maxMessageBytes,
      // The key subprotocol is never echoed back; `realtime` (what OpenAI's browser example offers) or the first other one is.
      handleProtocols: (protocols) => [...protocols].find((protocol) => !protocol.startsWith(KEY_PROTOCOL)) ?? false,
    });
    // The 101 carries the request id and the overhead header like every other answer: the gateway's
    // time before the upstream's handshake plus its time since.
    this.#wss.on('headers', (headers: string[], request: IncomingMessage) => {
      const accepting = this.#accepting.get(request);
      if (accepting === undefined) return;
      headers.push(`x-request-id: ${accepting.requestId}`, `${OVERHEAD_HEADER}: ${formatMs(accepting.overheadMs + performance.now() - accepting.resumedAt)}`);
    });
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => void this.#upgrade(request, socket, head));
  }

  /** Open WebSockets. */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Shutdown begins: no new sockets; idle ones close now (1001), busy ones when their turn ends.
   * Those still open at drain_timeout are closed by the active-stream registry.
   */
  drain(): void {
    this.#closing = true;
    for (const session of this.#sessions) {
      session.policy.drain();
      if (!session.policy.busy) session.relay.end(1001, 'the gateway is shutting down');
    }
  }

  async #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    markUpgraded(socket);
    socket.on('error', () => socket.destroy());
    const requestId = requestIdFor(request);
    const startedAt = performance.now();
    const parts = this.deps.runtime.current;
    const abort = new AbortController();
    socket.once('close', () => abort.abort());
    let caller: Caller | undefined;
    let route = 'unmatched';
    let model: string | undefined;
    let sentAt: number | undefined;
    try {
      if (this.#closing) throw new GatewayError('shutting_down', 'The gateway is shutting down; reconnect shortly.');
      const { path, query } = canonicalPath(request.url ?? '/');
      const endpoint: SocketEndpoint | undefined = path === '/v1/responses' ? '/responses' : path === '/v1/realtime' ? '/realtime' : undefined;
      if (endpoint === undefined) {
        if (!path.startsWith('/v1/')) throw new GatewayError('not_found', `No WebSocket at ${path}.`);
        throw new GatewayError('upgrade_required', `${path} has no WebSocket; use HTTP. WebSockets are relayed on /v1/responses and /v1/realtime.`, { headers: { connection: 'close' } });
      }
      route = path;
      if (request.method !== 'GET') throw new GatewayError('invalid_request', 'A WebSocket handshake is a GET.');
      const offered = protocolsOf(request.headers);
      caller = await parts.auth.authenticate(credentialHeaders(request.headers, offered));
      const key = caller.key;
      const origin = request.headers.origin;
      if (key?.allowOrigin !== undefined && origin !== undefined && !key.allowOrigin.has(origin)) {
        throw new GatewayError('origin_not_allowed', `Key "${caller.name}" may not be used from origin ${origin}.`);
      }
      const found = classify('WEBSOCKET', endpoint);
      if (key !== undefined && key.endpoints?.allows('WEBSOCKET', path) !== true) confine(key, 'WEBSOCKET', path, found.known ? found.endpoint : undefined);
      const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
      if (endpoint === '/realtime') {
        const named = checkedModel(params.get('model') ?? undefined);
        model = named === undefined ? undefined : resolveAlias(named, parts.config.modelAlias);
        if (model !== undefined) params.set('model', model);
        if (model === undefined && key?.models !== undefined) throw new GatewayError('invalid_request', `The "model" query parameter is required: key "${key.name}" may use only some models.`, { param: 'model' });
        parts.admission.check(caller, model);
      }
      const targets = parts.upstreams.socketTargets(endpoint, params, model);
      sentAt = performance.now();
      const upstream = await openUpstreamSocket(targets, {
        headers: forwardedHeaders(request.headers),
        protocols: offered.filter((protocol) => !protocol.startsWith(KEY_PROTOCOL)),
        timeoutMs: parts.config.upstream.connectTimeoutMs + parts.config.upstream.firstByteTimeoutMs,
        secrets: parts.upstreams.secrets(),
        signal: abort.signal,
      });
      if (abort.signal.aborted || socket.destroyed) {
        upstream.socket.terminate();
        return;
      }
      this.#accepting.set(request, { requestId, overheadMs: sentAt - startedAt, resumedAt: performance.now() });
      const context: SocketContext = { caller, route, upstream: upstream.target.upstream, meter: this.deps.meter, prices: parts.prices, logger: this.deps.logger, metrics: this.deps.metrics, tracing: this.deps.tracing, handshakeHeaders: request.headers };
      this.#wss.handleUpgrade(request, socket, head, (client) => this.#start({ client, upstream: upstream.socket, endpoint, context, parts, requestId, startedAt, model, target: upstream.target }));
    } catch (error) {
      this.#refuse(socket, requestId, error, { caller, route, model, startedAt, sentAt });
    }
  }

  #start(opened: { client: WebSocket; upstream: WebSocket; endpoint: SocketEndpoint; context: SocketContext; parts: RuntimeParts; requestId: string; startedAt: number; model: string | undefined; target: SocketTarget }): void {
    const { client, upstream, endpoint, context, parts, requestId } = opened;
    // The policies call these only from relay events, which come after the relay exists.
    const send = (event: string): void => relay.sendToClient(event);
    const idle = (): void => {
      if (this.#closing) relay.end(1001, 'the gateway is shutting down');
    };
    const policy =
      endpoint === '/responses'
        ? new ResponsesSocket({ context, parts, ownership: this.deps.ownership, target: opened.target, requestId, send, idle })
        : new RealtimeSocket({ context, parts, model: opened.model, requestId, send, idle, sendUpstream: (event) => relay.sendToUpstream(event), close: (code, reason) => relay.end(code, reason) });
    const relayed: RelayPolicy = {
      fromClient: (message) => policy.fromClient(message),
      fromUpstream: (message) => policy.fromUpstream(message),
      ended: (ending) => {
        policy.ended(ending);
        this.#sessions.delete(session);
        unregister();
        this.deps.logger.info(
          { reqId: requestId, method: 'GET', route: context.route, status: 101, caller: context.caller.name, model: opened.model, upstream: context.upstream, latency_ms: round(performance.now() - opened.startedAt), closed_by: ending.by, close_code: ending.code },
          'websocket closed',
        );
      },
    };
    const relay = new SocketRelay(client, upstream, relayed, parts.config.websocket, (error) => this.deps.logger.error({ reqId: requestId, err: (error as Error).message }, 'websocket relay failed'));
    const session: Session = { relay, policy };
    this.#sessions.add(session);
    const unregister = this.deps.streams.add(() => relay.end(1001, 'the gateway is shutting down'));
    if (this.#closing) {
      policy.drain();
      relay.end(1001, 'the gateway is shutting down');
    }
  }

  /** Answers a refused handshake over HTTP, in OpenAI's error shape, and records it like any refused request. */
  #refuse(socket: Duplex, requestId: string, error: unknown, seen: { caller: Caller | undefined; route: string; model: string | undefined; startedAt: number; sentAt: number | undefined }): void {
    const failure = toGatewayError(error);
    if (failure.code === 'internal_error') this.deps.logger.error({ reqId: requestId, err: error }, 'unhandled error');
    // The gateway's time up to the upstream socket's attempts (all of it when none was tried), as on HTTP answers.
    const overheadMs = (seen.sentAt ?? performance.now()) - seen.startedAt;
    if (!socket.destroyed && socket.writable) {
      const body = openAiErrorBody(failure);
      const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), connection: 'close', 'x-request-id': requestId, [OVERHEAD_HEADER]: formatMs(overheadMs), ...failure.headers };
      const head = Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}`)
        .join('\r\n');
      socket.end(`HTTP/1.1 ${failure.status} ${STATUS_TEXT[failure.status] ?? 'Error'}\r\n${head}\r\n\r\n${body}`);
    }
    const latencyMs = performance.now() - seen.startedAt;
    if (seen.caller !== undefined) {
      this.deps.meter.record({
        requestId,
        time: new Date(),
        keyId: seen.caller.key?.id,
        caller: seen.caller.name,
        route: seen.route,
        model: seen.model,
        upstream: undefined,
        status: failure.status,
        usage: undefined,
        costUsd: null,
        usageSource: 'none',
        latencyMs,
        ttfbMs: undefined,
        aborted: false,
        errorCode: failure.code,
      });
    }
    this.deps.logger.info({ reqId: requestId, method: 'GET', route: seen.route, status: failure.status, caller: seen.caller?.name, model: seen.model, latency_ms: round(latencyMs), overhead_ms: round(overheadMs), error: failure.code }, 'request');
    const labels = socketLabels(seen.route);
    this.deps.metrics?.observe({ route: labels.route, kind: labels.kind, status: failure.status, model: seen.model, caller: seen.caller?.name, upstream: undefined, totalMs: latencyMs, upstreamMs: seen.sentAt === undefined ? undefined : performance.now() - seen.sentAt, ttfbMs: undefined, overheadMs, attempts: undefined, usage: undefined, costUsd: undefined, errorCode: failure.code });
  }
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function protocolsOf(headers: IncomingHttpHeaders): string[] {
  const value = headers['sec-websocket-protocol'];
  if (typeof value !== 'string') return [];
  return value
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');
}

/** The headers the key is read from: the caller's own, or — for a browser — the key subprotocol as a bearer token. */
function credentialHeaders(headers: IncomingHttpHeaders, protocols: readonly string[]): IncomingHttpHeaders {
  if (headers.authorization !== undefined || headers['api-key'] !== undefined) return headers;
  const keyProtocol = protocols.find((protocol) => protocol.startsWith(KEY_PROTOCOL));
  return keyProtocol === undefined ? headers : { authorization: `Bearer ${keyProtocol.slice(KEY_PROTOCOL.length)}` };
}

function forwardedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}
