import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { Authenticator } from '../auth/authenticator.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { ByteLimit, declaredLength, readBody, tooLarge } from '../http/read-body.js';
import { clientResponseHeaders, upstreamRequestHeaders } from '../http/relay-headers.js';
import { logRequest } from '../http/request-log.js';
import { SSE_HEADERS } from '../http/sse-response.js';
import type { Meter } from '../metering/usage-event.js';
import { endpointKind, type EndpointKind } from '../policy/endpoints.js';
import { prepareV1Body, type V1BodyPolicy } from '../policy/v1-body.js';
import { relayBody, type RelayOutcome } from '../streaming/relay-response.js';
import { SSE_KEEPALIVE, sseErrorEvent } from '../streaming/sse-usage-tap.js';
import { upstreamErrorMessage } from '../upstream/error-body.js';
import { upstreamFailure } from '../upstream/failure.js';
import { sendUpstream } from '../upstream/send.js';
import type { Upstream } from '../upstream/upstream.js';

export interface V1Deps {
  config: Config;
  auth: Authenticator;
  upstream: Upstream;
  meter: Meter;
}

const NOTHING_RELAYED: RelayOutcome = { usage: undefined, aborted: false, error: undefined, firstByteAt: undefined, textSeen: undefined };
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\b/i;
// A `..` or `.` segment, raw or percent-encoded, could walk out of the upstream's base path.
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

interface PreparedRequest {
  kind: EndpointKind;
  path: string;
  body: Buffer | string | Readable | null;
  contentLength: number | undefined;
  stream: boolean;
  usageInjected: boolean;
  /** Set by the streaming body counter when an upload passes the limit. */
  exceeded: () => boolean;
}

/**
 * Everything under /v1 is relayed to the upstream with the server-held key: known endpoints are
 * understood (model, aliases, usage), everything else passes as is — an endpoint OpenAI adds
 * tomorrow works without a code change.
 */
export function v1Routes(app: FastifyInstance, deps: V1Deps): void {
  const { config, auth, upstream, meter } = deps;
  const timeouts = config.upstream;
  const secrets = upstream.keys.all();
  const limit = config.server.v1BodyLimit;
  const policy: V1BodyPolicy = { modelAlias: config.modelAlias, defaults: config.v1Defaults ? config.defaults : undefined };
  const identity = { organization: config.upstream.organization, project: config.upstream.project };
  const failure = (error: unknown): GatewayError => upstreamFailure(error, upstream.name, timeouts);

  async function prepare(request: FastifyRequest, pathname: string, query: string): Promise<PreparedRequest> {
    const kind = endpointKind(request.method, pathname);
    const raw = request.raw;
    const prepared: PreparedRequest = { kind, path: pathname + query, body: null, contentLength: undefined, stream: false, usageInjected: false, exceeded: () => false };
    const declared = declaredLength(raw);
    const hasBody = BODY_METHODS.has(request.method) && (declared === undefined ? raw.headers['transfer-encoding'] !== undefined : declared > 0);
    if (!hasBody) return prepared;
    if (declared !== undefined && declared > limit) throw tooLarge(limit);

    if (JSON_TYPE.test(request.headers['content-type'] ?? '')) {
      // JSON bodies are read once: routing and metering need the model (and stream flag).
      const bytes = await readBody(raw, limit);
      let parsed: unknown;
      try {
        parsed = JSON.parse(bytes.toString('utf8'));
      } catch (error) {
        throw new GatewayError('invalid_json', `Request body is not valid JSON: ${(error as Error).message.replace(/\s+/g, ' ').slice(0, 200)}`);
      }
      const body = prepareV1Body(kind, bytes, parsed, policy);
      request.ctx.model = body.model;
      prepared.body = body.body;
      prepared.contentLength = Buffer.byteLength(body.body);
      prepared.stream = body.stream;
      prepared.usageInjected = body.usageInjected;
      return prepared;
    }
    // Uploads (multipart audio, files) stream through; a declared length is enforced above,
    // a chunked one is counted on the way.
    if (declared !== undefined) {
      prepared.body = raw;
      prepared.contentLength = declared;
    } else {
      let exceeded = false;
      prepared.body = raw.pipe(new ByteLimit(limit, () => (exceeded = true)));
      prepared.exceeded = () => exceeded;
    }
    return prepared;
  }

  async function handler(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const ctx = request.ctx;
    ctx.caller = auth.authenticate(request.headers).name;
    const url = request.url;
    const queryAt = url.indexOf('?');
    const pathname = (queryAt === -1 ? url : url.slice(0, queryAt)).slice('/v1'.length);
    if (DOT_SEGMENT.test(pathname) || pathname.includes('\\')) {
      throw new GatewayError('invalid_request', 'The path may not contain "." or ".." segments.');
    }
    const prepared = await prepare(request, pathname, queryAt === -1 ? '' : url.slice(queryAt));
    ctx.upstream = upstream.name;

    const abort = new AbortController();
    const client = reply.raw;
    const onEarlyClose = (): void => {
      if (!client.writableFinished) abort.abort();
    };
    client.once('close', onEarlyClose);
    const early = prepared.stream ? new EarlyStream(reply, config.sseKeepaliveMs) : undefined;

    const sentAt = performance.now();
    let response: Dispatcher.ResponseData;
    try {
      response = await sendUpstream(
        upstream,
        { method: request.method as Dispatcher.HttpMethod, path: prepared.path, headers: upstreamRequestHeaders(request.headers, identity, prepared.contentLength), body: prepared.body, signal: abort.signal },
        upstream.keys.next(),
        timeouts,
      );
    } catch (error) {
      client.off('close', onEarlyClose);
      if (abort.signal.aborted) return finishAborted(request, prepared);
      const gatewayError = prepared.exceeded() ? tooLarge(limit) : failure(error);
      if (early?.committed) {
        early.fail(gatewayError);
        return record(request, prepared, gatewayError.status, NOTHING_RELAYED, gatewayError.code);
      }
      early?.cancel();
      throw gatewayError;
    }
    client.off('close', onEarlyClose);
    ctx.upstreamMs = performance.now() - sentAt;
    const status = response.statusCode;
    const contentType = String(response.headers['content-type'] ?? '');
    const isSse = status < 400 && contentType.startsWith('text/event-stream');

    if (early?.committed && !isSse) {
      // We already promised the client an event stream; deliver the upstream's answer as an error event.
      const text = await response.body.text().catch(() => '');
      const error = new GatewayError('upstream_error', `Upstream "${upstream.name}" answered ${status}: ${upstreamErrorMessage(status, text, secrets)}`);
      early.fail(error);
      return record(request, prepared, status, NOTHING_RELAYED, error.code);
    }
    early?.cancel();

    const headers = clientResponseHeaders(response.headers as Record<string, string | string[] | undefined>, !isSse);
    if (!early?.committed) {
      reply.hijack();
      const merged = { ...(reply.getHeaders() as Record<string, string | string[]>), ...headers, ...(isSse ? SSE_HEADERS : {}) };
      client.writeHead(status, merged);
      if (isSse) client.flushHeaders();
    }
    const outcome = await relayBody(client, response.body, isSse, { meter: prepared.kind !== 'other' && status < 400, dropUsageEvent: prepared.usageInjected, expectDone: prepared.kind !== 'other', keepaliveMs: config.sseKeepaliveMs, failure }, () => abort.abort());
    record(request, prepared, outcome.aborted ? 499 : status, outcome);
  }

  function finishAborted(request: FastifyRequest, prepared: PreparedRequest): void {
    record(request, prepared, 499, { ...NOTHING_RELAYED, aborted: true });
  }

  function record(request: FastifyRequest, prepared: PreparedRequest, status: number, outcome: RelayOutcome, errorCode?: string): void {
    const ctx = request.ctx;
    const now = performance.now();
    const usage = outcome.usage;
    meter.record({
      requestId: request.id,
      time: new Date(),
      keyId: undefined,
      caller: ctx.caller ?? 'anonymous',
      route: `/v1${prepared.path.split('?')[0]}`,
      model: ctx.model,
      upstream: ctx.upstream,
      status,
      usage,
      usageSource: usage ? 'upstream' : 'none',
      latencyMs: now - ctx.startedAt,
      ttfbMs: outcome.firstByteAt === undefined ? undefined : outcome.firstByteAt - ctx.startedAt,
      aborted: outcome.aborted,
      errorCode: errorCode ?? outcome.error?.code,
    });
    logRequest(request, status, outcome.aborted ? { aborted: true } : outcome.error ? { error: outcome.error.code } : undefined);
  }

  app.register(async (scope) => {
    // Bodies under /v1 are read (JSON) or streamed (uploads) by the handler itself, with its own limit.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request: FastifyRequest, _payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void) => done(null));
    scope.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/v1/*', config: { errorFormat: 'openai' }, handler });
  });
}

/**
 * A client asked for a stream and the upstream is slow to answer (reasoning models can take
 * minutes to their first byte). After one keep-alive interval without upstream headers we
 * commit to `200 text/event-stream` and send `: keep-alive` comments, so load balancers do not
 * cut the connection; anything that goes wrong after that is reported as an SSE error event.
 */
class EarlyStream {
  committed = false;
  private timer: NodeJS.Timeout | undefined;
  private response: ServerResponse | undefined;

  constructor(
    private readonly reply: FastifyReply,
    private readonly intervalMs: number,
  ) {
    if (intervalMs > 0) this.timer = setInterval(() => this.tick(), intervalMs);
  }

  private tick(): void {
    const client = this.reply.raw;
    if (client.destroyed) return;
    if (!this.committed) {
      this.committed = true;
      this.reply.hijack();
      client.writeHead(200, { ...(this.reply.getHeaders() as Record<string, string | string[]>), ...SSE_HEADERS });
      this.response = client;
    }
    this.response?.write(SSE_KEEPALIVE);
  }

  cancel(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  fail(error: GatewayError): void {
    this.cancel();
    this.reply.raw.end(sseErrorEvent({ message: error.message, type: error.type, code: error.code }));
  }
}
