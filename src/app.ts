import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from './config/index.js';
import { GatewayError, sendError, toGatewayError } from './errors/index.js';
import type { ActiveStreams } from './http/active-streams.js';
import { answerPreflight, applyCors } from './http/cors.js';
import { assertJsonDepth } from './http/json-depth.js';
import { GatewayRequest } from './pipeline/gateway-request.js';
import { requestIdFor } from './http/request-id.js';
import { isUpgraded } from './http/upgraded-sockets.js';
import type { RequestFinisher } from './pipeline/finish.js';
import type { Logger } from './observability/logger.js';
import type { GatewayMetrics } from './observability/metrics.js';
import { stampOverhead } from './observability/overhead.js';
import { TRACING_OFF, type Tracer } from './observability/tracing.js';
import type { Meter } from './metering/usage-event.js';
import { SocketServer } from './sockets/socket-server.js';
import type { BackgroundUsage } from './ownership/background-usage.js';
import type { Ownership } from './ownership/ownership.js';
import { apiChatRoutes } from './routes/api-chat.js';
import { conversationRoutes } from './routes/conversations.js';
import type { Conversations } from './conversations/conversations.js';
import { healthRoutes } from './routes/health.js';
import { messagesRoutes } from './routes/messages.js';
import { metricsRoutes } from './routes/metrics.js';
import { v1Routes } from './routes/v1.js';
import type { Runtime } from './runtime.js';

export interface AppDeps {
  logger: Logger;
  /** Where WebSocket turns are recorded (HTTP requests go through `finish`). */
  meter: Meter;
  runtime: Runtime;
  finish: RequestFinisher;
  streams: ActiveStreams;
  ownership: Ownership;
  backgroundUsage: BackgroundUsage;
  /** Conversations of /api/chat (issue 16). */
  conversations: Conversations;
  /** Prometheus metrics: requests counted in flight here, and GET /metrics on this port when metrics_public is set. */
  metrics?: GatewayMetrics;
  /** OpenTelemetry traces; off (the SDK not loaded) unless an OTLP endpoint is configured. */
  tracing?: Tracer;
}

/** Fastify with the gateway's request id, error rendering and logging conventions; routes are added by the caller. */
export interface ServerLimits {
  bodyLimit: number;
  maxHeaderSize: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

/**
 * Node's ServerResponse under a class of one server's own, so that closing can change how its
 * responses end. Its `writeHead` — the one call every head goes through, Fastify's and the heads
 * routes write after `reply.hijack()` alike — adds `x-openai-api-overhead-ms` to the answer of a
 * gateway request (`gatewayRequest`, set by buildApp's onRequest). Until `closeKeepAlive()` it
 * adds nothing else: serving pays no per-request check.
 * From then on — also for requests already running when the drain began (a slow upstream, a /v1
 * relay that writes its own head after `reply.hijack()`, which no Fastify hook reaches):
 * - a head not yet written says `Connection: close`, and Node ends the socket after the response;
 * - a response whose head already promised keep-alive (a stream begun before) frees its socket
 *   as soon as it finishes.
 */
function drainableResponses(): { ServerResponse: typeof ServerResponse; closeKeepAlive(closeUnused: () => void): void; arrived(request: IncomingMessage): void } {
  class DrainableResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
    declare gatewayRequest: GatewayRequest | undefined;
    // Spelled out: the implicit `(...args)` constructor measured ~30 ns more per response.
    constructor(req: Request, options?: object) {
      // @ts-expect-error -- @types/node omits the options Node's server passes (highWaterMark and the like).
      super(req, options);
      this.gatewayRequest = undefined;
    }
  }
  const override = (name: 'writeHead' | 'end', value: (this: DrainableResponse, ...args: unknown[]) => unknown): void => {
    Object.defineProperty(DrainableResponse.prototype, name, { configurable: true, writable: true, value });
  };
  const writeHead = function (this: DrainableResponse, ...args: unknown[]): unknown {
    const request = this.gatewayRequest;
    if (request !== undefined && !this.headersSent) stampOverhead(this, args, request.headWritten(performance.now()));
    return Reflect.apply(ServerResponse.prototype.writeHead, this, args);
  };
  override('writeHead', writeHead);
  // While closing only: when each request came in, for the 503 Fastify answers it with itself.
  const arrivals = new WeakMap<IncomingMessage, number>();
  return {
    ServerResponse: DrainableResponse,
    arrived(request) {
      arrivals.set(request, performance.now());
    },
    closeKeepAlive(closeUnused) {
      override('writeHead', function (...args) {
        this.shouldKeepAlive = false;
        // A request arriving now gets Fastify's 503 before any hook runs (so no gatewayRequest):
        // its overhead is all the time it spent here.
        const arrivedAt = this.gatewayRequest === undefined && !this.headersSent ? arrivals.get(this.req) : undefined;
        if (arrivedAt !== undefined) stampOverhead(this, args, performance.now() - arrivedAt);
        return Reflect.apply(writeHead, this, args);
      });
      override('end', function (...args) {
        // Node's own 'finish' listener, added when the request came in, detaches the socket first,
        // so by the time this one runs the socket counts as idle.
        if (this.headersSent && this.shouldKeepAlive && !this.writableEnded) this.once('finish', closeUnused);
        return Reflect.apply(ServerResponse.prototype.end, this, args);
      });
    },
  };
}

export function baseServer(logger: Logger, limits: ServerLimits): FastifyInstance {
  const headersTimeoutMs = Math.max(1000, Math.floor(limits.requestTimeoutMs / 3));
  const responses = drainableResponses();
  const app: FastifyInstance = Fastify({
    http: {
      maxHeaderSize: limits.maxHeaderSize,
      // Node checks both timeouts only every connectionsCheckingInterval (30 s by default), so a
      // 1 s request_timeout would let a slow client hold its socket for 30 s: check at least twice per head timeout.
      connectionsCheckingInterval: Math.min(30_000, Math.floor(headersTimeoutMs / 2)),
      ServerResponse: responses.ServerResponse,
    },
    // Slow clients (slowloris) get the whole request in this time, the head in a third of it.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // pino's Logger is a FastifyBaseLogger with extra fields; Fastify's generics would otherwise leak it everywhere.
    loggerInstance: logger as FastifyBaseLogger,
    // Our own one line per request (http/request-log.ts) replaces Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestIdFor,
    bodyLimit: limits.bodyLimit,
    return503OnClosing: true,
  });
  app.server.headersTimeout = headersTimeoutMs;
  app.server.maxConnections = limits.maxConnections;
  // Closing: Fastify answers new requests 503 and server.close() drops the sockets Node counts as
  // idle — but not a socket that connected and has not sent a request yet (its head timer runs,
  // so Node counts it as busy until headers_timeout), nor one whose request ends during the
  // drain (it would stay open for keep_alive_timeout). Either held close() until drain_timeout.
  // So every socket without a request in flight is closed when the drain begins, and the
  // responses still running close theirs as they end (above). Tracked per connection, not per request.
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const closeUnused = (): void => {
    // Node attaches a response to its socket from the request's head until the response ends.
    // WebSockets carry no HTTP response either; their relay closes them with a close frame (sockets/).
    for (const socket of sockets) if (!(socket as Socket & { _httpMessage?: unknown })._httpMessage && !isUpgraded(socket)) socket.destroy();
  };
  app.addHook('preClose', (done) => {
    // Ahead of Fastify's own listener; added only now, so serving pays nothing for it.
    app.server.prependListener('request', responses.arrived);
    responses.closeKeepAlive(closeUnused);
    closeUnused();
    done();
  });
  // The root scope speaks JSON only; /v1 installs its own raw parsers.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('ctx', null as never);
  // Bodies parsed by Fastify (/api/chat, admin); /v1 reads and checks its own.
  app.addHook('preValidation', (request, _reply, done) => {
    try {
      assertJsonDepth(request.body);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  });
  app.setErrorHandler((error, request, reply) => {
    const gatewayError = toGatewayError(error);
    if (gatewayError.code === 'internal_error') request.log.error({ err: error }, 'unhandled error');
    if (request.ctx) {
      request.ctx.errorCode = gatewayError.code;
      request.ctx.errorStatus = gatewayError.status;
    }
    return sendError(request, reply, gatewayError);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(request, reply, new GatewayError('not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`));
  });
  return app;
}

/** The whole public gateway as a Fastify instance, not listening yet (tests and main both start it). */
export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const app = baseServer(deps.logger, config.server);
  const { runtime, finish, metrics } = deps;
  const tracing = deps.tracing ?? TRACING_OFF;
  app.addHook('onRequest', (request, reply, done) => {
    request.ctx = new GatewayRequest(performance.now());
    (reply.raw as ServerResponse & { gatewayRequest: GatewayRequest | undefined }).gatewayRequest = request.ctx;
    metrics?.started();
    if (tracing.enabled) request.ctx.trace = tracing.startRequest(request.ctx, request);
    reply.header('x-request-id', request.id);
    const cors = runtime.current.cors;
    if (request.method === 'OPTIONS' && request.headers.origin !== undefined) {
      answerPreflight(request, reply, cors);
      return;
    }
    applyCors(request, reply, cors);
    // The one close listener of a request: a client gone before its answer was complete cancels
    // the upstream call. A pipeline route then ends the request itself (as 499); any other one —
    // gone mid-upload, before a route took it — never fires onResponse, so it is finished here.
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished) return;
      const ctx = request.ctx;
      ctx.clientLeft();
      if (!ctx.pipelined) finish(request, 499);
    });
    done();
  });
  // Requests no pipeline route took (health, unknown paths, bodies Fastify refused) end here.
  app.addHook('onResponse', (request, reply, done) => {
    const ctx = request.ctx;
    if (!ctx.pipelined) finish(request, ctx.errorStatus ?? reply.statusCode);
    done();
  });

  healthRoutes(app);
  const routeDeps = { runtime, finish, streams: deps.streams, ownership: deps.ownership, backgroundUsage: deps.backgroundUsage };
  apiChatRoutes(app, config, { ...routeDeps, conversations: deps.conversations });
  conversationRoutes(app, { runtime, conversations: deps.conversations });
  messagesRoutes(app, routeDeps);
  v1Routes(app, config, routeDeps);
  if (metrics) metricsRoutes(app, { metrics, runtime, listener: 'public' });
  const sockets = new SocketServer(app.server, { runtime, meter: deps.meter, logger: deps.logger, ownership: deps.ownership, streams: deps.streams, maxMessageBytes: config.server.v1BodyLimit, metrics, tracing });
  metrics?.watchWebSockets(() => sockets.size);
  app.addHook('preClose', (done) => {
    sockets.drain();
    done();
  });
  await app.ready();
  return app;
}
