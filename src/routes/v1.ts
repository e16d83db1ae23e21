import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { Caller } from '../auth/authenticator.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { assertJsonDepth } from '../http/json-depth.js';
import { ByteLimit, declaredLength, readBody, tooLarge } from '../http/read-body.js';
import { clientResponseHeaders, upstreamRequestHeaders } from '../http/relay-headers.js';
import { SSE_HEADERS } from '../http/sse-response.js';
import { requestedMaxTokens } from '../metering/estimate-usage.js';
import type { RequestFinisher } from '../metering/finish-request.js';
import { estimatePromptTokens } from '../metering/token-estimate.js';
import { endpointKind, type EndpointKind } from '../policy/endpoints.js';
import { prepareV1Body, type KeyPolicy } from '../policy/v1-body.js';
import { relayBody } from '../streaming/relay-response.js';
import { SSE_KEEPALIVE, sseErrorEvent } from '../streaming/sse-usage-tap.js';
import type { UpstreamAnswer } from '../upstream/client.js';
import { upstreamErrorMessage } from '../upstream/error-body.js';
import { redactSecrets } from '../upstream/redact.js';
import { peekBody } from '../upstream/replay-body.js';
import { upstreamFailure } from '../upstream/failure.js';
import type { ModelCatalog } from '../upstream/model-catalog.js';
import type { ActiveStreams } from '../http/active-streams.js';
import type { Runtime, RuntimeParts } from '../runtime.js';
import { authenticateRequest } from './authenticate.js';

export interface V1Deps {
  runtime: Runtime;
  finish: RequestFinisher;
  streams: ActiveStreams;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\b/i;
const HTML_TYPE = /^\s*text\/html\b/i;
/** Error bodies are read this far to blank out upstream keys an upstream may have echoed. */
const ERROR_PEEK_LIMIT = 64 * 1024;
// A `..` or `.` segment, raw or percent-encoded, could walk out of the upstream's base path.
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/**
 * The path and query of a request target. Node accepts the absolute form (`POST http://host/v1/…`,
 * RFC 9112 §3.2.2), which still names a resource here: the scheme and host are dropped, never followed.
 */
function originForm(target: string): string {
  if (target.startsWith('/')) return target;
  const rest = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  return rest.startsWith('/') ? rest : `/${rest}`;
}

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

function keyPolicy(caller: Caller): KeyPolicy | undefined {
  const key = caller.key;
  if (!key || (!key.persona && !key.defaults && key.maxTokensCeiling === undefined)) return undefined;
  return { persona: key.persona, defaults: key.defaults, maxTokensCeiling: key.maxTokensCeiling };
}

/**
 * Everything under /v1 is relayed to the upstream with the server-held key: known endpoints are
 * understood (model, aliases, usage), everything else passes as is — an endpoint OpenAI adds
 * tomorrow works without a code change. Every path passes the same admission checks.
 */
export function v1Routes(app: FastifyInstance, _startConfig: Config, deps: V1Deps): void {
  const { runtime, finish, streams } = deps;

  async function prepare(parts: RuntimeParts, request: FastifyRequest, caller: Caller, pathname: string, query: string): Promise<PreparedRequest> {
    const { config, upstreams } = parts;
    const limit = config.server.v1BodyLimit;
    const kind = endpointKind(request.method, pathname);
    request.ctx.kind = kind;
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
      assertJsonDepth(parsed);
      const body = prepareV1Body(kind, bytes, parsed, {
        modelAlias: config.modelAlias,
        defaults: config.v1Defaults ? config.defaults : undefined,
        key: keyPolicy(caller),
        includeUsage: (model) => upstreams.acceptsIncludeUsage(model),
      });
      request.ctx.body = parsed;
      // Opt-in only (log_bodies): prompts can hold anything the caller's users typed.
      if (config.log.bodies) request.log.info({ request_body: parsed }, 'bodies');
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
    const parts = runtime.current;
    const { config, auth, upstreams, admission, prices, models } = parts;
    const timeouts = config.upstream;
    const limit = config.server.v1BodyLimit;
    const caller = await authenticateRequest(request, reply, auth);
    const url = originForm(request.url);
    const queryAt = url.indexOf('?');
    const pathname = (queryAt === -1 ? url : url.slice(0, queryAt)).slice('/v1'.length);
    if (DOT_SEGMENT.test(pathname) || pathname.includes('\\')) {
      throw new GatewayError('invalid_request', 'The path may not contain "." or ".." segments.');
    }
    if (request.method === 'GET' && pathname === '/models') return listModels(parts, request, reply, caller, models);
    const prepared = await prepare(parts, request, caller, pathname, queryAt === -1 ? '' : url.slice(queryAt));
    ctx.ticket = await admission.admit(caller, ctx.model, () => {
      const model = ctx.model ?? '';
      const prompt = estimatePromptTokens(prepared.kind, ctx.body, model);
      const completion = requestedMaxTokens(ctx.body);
      return { tokens: prompt + completion, costUsd: prices.cost(model, { promptTokens: prompt, completionTokens: completion, cachedTokens: 0 }) ?? 0 };
    });

    const abort = new AbortController();
    const client = reply.raw;
    const onEarlyClose = (): void => {
      if (!client.writableFinished) abort.abort();
    };
    client.once('close', onEarlyClose);
    const early = prepared.stream ? new EarlyStream(reply, config.sseKeepaliveMs) : undefined;

    const sentAt = performance.now();
    let answer: UpstreamAnswer;
    try {
      answer = await upstreams.send({
        model: ctx.model,
        method: request.method as Dispatcher.HttpMethod,
        path: prepared.path,
        headers: upstreamRequestHeaders(request.headers, prepared.contentLength),
        body: prepared.body,
        signal: abort.signal,
      });
    } catch (error) {
      client.off('close', onEarlyClose);
      if (abort.signal.aborted) {
        ctx.aborted = true;
        early?.cancel();
        return finish(request, 499);
      }
      const gatewayError = prepared.exceeded() ? tooLarge(limit) : upstreamFailure(error, 'upstream', timeouts);
      if (early?.committed) {
        ctx.errorCode = gatewayError.code;
        early.fail(gatewayError);
        return finish(request, gatewayError.status);
      }
      early?.cancel();
      throw gatewayError;
    }
    client.off('close', onEarlyClose);
    const { response } = answer;
    ctx.upstreamMs = performance.now() - sentAt;
    ctx.upstream = answer.upstream;
    ctx.attempts = answer.attempts;
    const status = response.statusCode;
    const contentType = String(response.headers['content-type'] ?? '');
    const isSse = status < 400 && contentType.startsWith('text/event-stream');

    if (early?.committed && !isSse) {
      // We already promised the client an event stream; deliver the upstream's answer as an error event.
      const text = await response.body.text().catch(() => '');
      const error = new GatewayError('upstream_error', `Upstream "${answer.upstream}" answered ${status}: ${upstreamErrorMessage(status, text, upstreams.secrets())}`);
      ctx.errorCode = error.code;
      early.fail(error);
      return finish(request, status);
    }
    early?.cancel();
    if (prepared.kind !== 'other' && status < 400 && HTML_TYPE.test(contentType)) {
      // A known endpoint answers JSON or an event stream; a 200 HTML page is a proxy's or login
      // wall's page, or a base_url pointing at a website. Relaying it would hand the SDK a page it cannot parse.
      await response.body.dump().catch(() => undefined);
      throw new GatewayError('upstream_error', `Upstream "${answer.upstream}" answered ${status} with an HTML page instead of the API's JSON; check its base_url.`);
    }

    const headers = clientResponseHeaders(response.headers as Record<string, string | string[] | undefined>, !isSse);
    let body = response.body;
    if (status >= 400 && !isSse) {
      // Some providers echo the key a request was sent with in their error message: an error body
      // (its first 64 KiB, which is all of any real one) reaches the client with the upstream keys blanked out.
      const peeked = await peekBody(response.body, ERROR_PEEK_LIMIT).catch((error: unknown) => {
        throw upstreamFailure(error, answer.upstream, timeouts);
      });
      body = peeked.body;
      const redacted = peeked.complete ? redactSecrets(peeked.text, upstreams.secrets()) : peeked.text;
      if (redacted !== peeked.text) {
        // Why the cast: relayBody reads a stream of Buffers; undici's body type is a class we cannot construct.
        body = Readable.from([Buffer.from(redacted)]) as unknown as typeof body;
        headers['content-length'] = String(Buffer.byteLength(redacted));
      }
    }
    headers['x-openai-api-upstream'] = answer.upstream;
    headers['x-openai-api-attempts'] = String(answer.attempts);
    const limitHeaders = ctx.ticket?.headers;
    if (limitHeaders) for (const name in limitHeaders) headers[name] = limitHeaders[name]!;
    if (!early?.committed) {
      ctx.hijacked = true;
      reply.hijack();
      client.writeHead(status, { ...(reply.getHeaders() as Record<string, string | string[]>), ...headers, ...(isSse ? SSE_HEADERS : {}) });
      if (isSse) client.flushHeaders();
    }
    const failure = (error: unknown): GatewayError => upstreamFailure(error, answer.upstream, timeouts);
    const unregister = streams.add((error) => body.destroy(error));
    const outcome = await relayBody(client, body, isSse, { meter: prepared.kind !== 'other' && status < 400, dropUsageEvent: prepared.usageInjected, expectDone: prepared.kind !== 'other', keepaliveMs: config.sseKeepaliveMs, failure, secrets: upstreams.secrets() }, () => abort.abort());
    unregister();
    ctx.usage = outcome.usage;
    ctx.textSeen = outcome.textSeen;
    ctx.firstByteAt = outcome.firstByteAt;
    ctx.aborted = outcome.aborted;
    ctx.errorCode = outcome.error?.code ?? (status >= 400 ? `upstream_${status}` : undefined);
    finish(request, outcome.aborted ? 499 : status);
  }

  /** The union of models the caller's key may use, across every upstream. */
  async function listModels(parts: RuntimeParts, request: FastifyRequest, reply: FastifyReply, caller: Caller, catalog: ModelCatalog): Promise<void> {
    request.ctx.ticket = await parts.admission.admit(caller, undefined, () => ({ tokens: 0, costUsd: 0 }));
    const allowed = caller.key?.models;
    const data = (await catalog.models()).filter((model) => !allowed || allowed.test(model.id));
    reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({ object: 'list', data }));
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
    intervalMs: number,
  ) {
    if (intervalMs > 0) this.timer = setInterval(() => this.tick(), intervalMs);
  }

  private tick(): void {
    const client = this.reply.raw;
    if (client.destroyed) return;
    if (!this.committed) {
      this.committed = true;
      this.reply.request.ctx.hijacked = true;
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
