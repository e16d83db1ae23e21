import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Caller } from '../auth/authenticator.js';
import { anthropicErrorBody, anthropicErrorType, GatewayError, upstreamStatusCode } from '../errors/index.js';
import type { ActiveStreams } from '../http/active-streams.js';
import { assertJsonDepth } from '../http/json-depth.js';
import { readBody } from '../http/read-body.js';
import { clientResponseHeaders } from '../http/relay-headers.js';
import { SSE_HEADERS } from '../http/sse-response.js';
import { estimatePromptTokens } from '../metering/token-estimate.js';
import type { RequestFinisher } from '../pipeline/finish.js';
import { runPipeline, sendUpstream, type Prepared, type RouteAdapter } from '../pipeline/pipeline.js';
import { confine } from '../policy/confine.js';
import { classify } from '../policy/endpoints.js';
import { checkedModel } from '../policy/model-name.js';
import { isReasoningModel, maxOutputTokens, resolveAlias } from '../policy/model-rules.js';
import type { Runtime, RuntimeParts } from '../runtime.js';
import { relayBody } from '../streaming/relay-response.js';
import { usageFromObject } from '../streaming/usage.js';
import { chatCompletionToMessage } from '../translate/chat-to-messages-response.js';
import { ChatToMessagesStream } from '../translate/chat-stream-to-messages.js';
import { messagesToChatRequest } from '../translate/messages-to-chat.js';
import { upstreamErrorMessage } from '../upstream/error-body.js';
import { upstreamFailure } from '../upstream/failure.js';
import { redactSecrets } from '../upstream/redact.js';
import { blankedErrorBody } from '../upstream/replay-body.js';
import { answerHeaders, readJsonAnswer, streamTranslatedAnswer } from './translated-answer.js';

export interface MessagesDeps {
  runtime: Runtime;
  finish: RequestFinisher;
  streams: ActiveStreams;
}

type Json = Record<string, unknown>;

interface MessagesPrepared extends Prepared {
  readonly admitModel: string;
  readonly model: string;
  readonly body: Json;
  /** The caller's bytes, sent as they are to an Anthropic upstream when nothing was changed. */
  readonly raw: Buffer;
  readonly changed: boolean;
  readonly stream: boolean;
  /** An Anthropic upstream serves the model: relayed natively, else translated to chat completions. */
  readonly native: boolean;
  readonly countTokens: boolean;
  /** The query as sent (`?beta=true` from Claude Code), relayed to an Anthropic upstream. */
  readonly query: string;
}

/** Caller headers an Anthropic upstream understands; the key and version are the upstream entry's. */
const FORWARDED_HEADERS = ['anthropic-beta', 'anthropic-version'] as const;

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);

function forwardedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = { 'content-type': 'application/json' };
  for (const name of FORWARDED_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

/** The key's persona as Anthropic's `system`: before the caller's own (prepend) or instead of it (replace). */
function withPersona(system: unknown, persona: string, mode: 'prepend' | 'replace'): unknown {
  if (mode === 'replace' || system === undefined || system === '') return persona;
  if (typeof system === 'string') return `${persona}\n\n${system}`;
  if (Array.isArray(system)) return [{ type: 'text', text: persona }, ...(system as unknown[])];
  throw new GatewayError('invalid_request', '"system" must be a string or an array of text blocks.', { param: 'system' });
}

/**
 * Anthropic's Messages API on the public port (`POST /v1/messages`, `POST
 * /v1/messages/count_tokens`; https://docs.anthropic.com/en/api/messages): for Claude Code and
 * apps on the Anthropic SDKs. The same pipeline as every route — the key from `x-api-key` or
 * `Authorization`, the endpoint table, the model list, persona (as `system`), ceiling (on
 * `max_tokens`), rpm/tpm/budgets, one usage record — with errors in Anthropic's shape. A model an
 * Anthropic upstream serves is relayed natively (the caller's bytes, beta headers and query kept);
 * any other model goes to its OpenAI-compatible upstream as chat completions, translated both ways
 * event by event (src/translate/).
 */
export function messagesRoutes(app: FastifyInstance, deps: MessagesDeps): void {
  const { runtime, finish, streams } = deps;

  async function prepare(request: FastifyRequest, _reply: FastifyReply, parts: RuntimeParts, caller: Caller): Promise<MessagesPrepared> {
    const ctx = request.ctx;
    const { config, upstreams } = parts;
    const queryAt = request.url.indexOf('?');
    const pathname = queryAt === -1 ? request.url : request.url.slice(0, queryAt);
    const countTokens = pathname.endsWith('/count_tokens');
    const name = countTokens ? '/messages/count_tokens' : '/messages';
    ctx.kind = countTokens ? 'other' : 'messages';
    const key = caller.key;
    if (key !== undefined && key.endpoints?.allows('POST', `/v1${name}`) !== true) {
      const found = classify('POST', name);
      confine(key, 'POST', `/v1${name}`, found.known ? found.endpoint : undefined);
    }
    const raw = await readBody(request.raw, config.server.v1BodyLimit);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (error) {
      throw new GatewayError('invalid_json', `The body is not valid JSON: ${(error as Error).message.replace(/\s+/g, ' ').slice(0, 200)}`);
    }
    if (!isObject(parsed)) throw new GatewayError('invalid_request', 'The body must be a JSON object (a Messages API request).');
    assertJsonDepth(parsed);
    const body = parsed;
    ctx.body = body;
    let changed = key?.models !== undefined;
    if (body.model === undefined && key?.defaults?.model !== undefined) {
      body.model = key.defaults.model;
      changed = true;
    }
    const named = checkedModel(body.model);
    if (named === undefined) throw new GatewayError('invalid_request', '"model" is required.', { param: 'model' });
    const model = resolveAlias(named, config.modelAlias);
    if (model !== named) {
      body.model = model;
      changed = true;
    }
    ctx.model = model;
    if (!countTokens) {
      const persona = key?.persona;
      if (persona !== undefined && persona.mode !== 'off' && persona.text !== '') {
        body.system = withPersona(body.system, persona.text, persona.mode === 'replace' ? 'replace' : 'prepend');
        changed = true;
      }
      const ceiling = key?.maxTokensCeiling;
      if (ceiling !== undefined && (typeof body.max_tokens !== 'number' || body.max_tokens > ceiling)) {
        body.max_tokens = ceiling;
        changed = true;
      }
    }
    const protocols = upstreams.protocolsFor(model);
    if (!protocols.anthropic && !protocols.openai) throw new GatewayError('model_not_found', `The model \`${model.slice(0, 200)}\` is not served by this gateway.`, { param: 'model' });
    return { admitModel: model, model, body, raw, changed, stream: body.stream === true, native: protocols.anthropic, countTokens, query: queryAt === -1 ? '' : request.url.slice(queryAt) };
  }

  async function exchange(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, prepared: MessagesPrepared): Promise<number> {
    if (prepared.countTokens && !prepared.native) {
      // No OpenAI-compatible upstream counts Anthropic requests: the gateway's tokenizer does.
      const inputTokens = estimatePromptTokens('messages', prepared.body, prepared.model);
      reply.header('content-type', 'application/json').send(JSON.stringify({ input_tokens: inputTokens }));
      return 200;
    }
    return prepared.native ? native(request, reply, parts, prepared) : translated(request, reply, parts, prepared);
  }

  /** To an Anthropic upstream: the caller's request as sent, the answer as it comes, usage read on the way. */
  async function native(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, prepared: MessagesPrepared): Promise<number> {
    const ctx = request.ctx;
    const path = (prepared.countTokens ? '/messages/count_tokens' : '/messages') + prepared.query;
    const answer = await sendUpstream(request, parts, {
      model: prepared.model,
      method: 'POST',
      path,
      headers: forwardedHeaders(request.headers),
      body: prepared.changed ? JSON.stringify(prepared.body) : prepared.raw,
      protocol: 'anthropic',
    });
    const { response } = answer;
    const status = response.statusCode;
    const contentType = String(response.headers['content-type'] ?? '');
    const isSse = status < 400 && contentType.startsWith('text/event-stream');
    const timeouts = parts.config.upstream;
    // The answer's own headers (request-id, retry-after, anthropic-ratelimit-*) pass as on /v1.
    const headers = clientResponseHeaders(response.headers as Record<string, string | string[] | undefined>, !isSse);
    let body = response.body;
    if (status >= 400 && !isSse) {
      body = await blankedErrorBody(body, (text) => redactSecrets(text, parts.upstreams.secrets()), headers).catch((error: unknown) => {
        throw upstreamFailure(error, answer.upstream, timeouts);
      });
    }
    reply.hijack();
    const client = reply.raw;
    client.writeHead(status, {
      ...(reply.getHeaders() as Record<string, string | string[]>),
      ...headers,
      'content-type': contentType || 'application/json',
      'x-openai-api-upstream': answer.upstream,
      'x-openai-api-attempts': String(answer.attempts),
      ...(ctx.ticket?.headers ?? {}),
      ...(isSse ? SSE_HEADERS : {}),
    });
    const unregister = streams.add((error) => body.destroy(error));
    const outcome = await relayBody(
      client,
      body,
      isSse,
      { meter: status < 400 && !prepared.countTokens, dropUsageEvent: false, expectDone: !prepared.countTokens, keepaliveMs: parts.config.sseKeepaliveMs, failure: (error) => upstreamFailure(error, answer.upstream, timeouts), secrets: parts.upstreams.secrets(), protocol: 'anthropic' },
      () => ctx.clientLeft(),
    );
    unregister();
    ctx.relayed({ usage: outcome.usage, textSeen: outcome.textSeen, firstByteAt: outcome.firstByteAt, errorCode: outcome.error?.code ?? (status >= 400 ? upstreamStatusCode(status) : undefined) });
    if (outcome.aborted) {
      ctx.aborted = true;
      return 499;
    }
    return status;
  }

  /** To an OpenAI-compatible upstream: translated to chat completions and back. */
  async function translated(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, prepared: MessagesPrepared): Promise<number> {
    const ctx = request.ctx;
    const { model, stream } = prepared;
    const chat = messagesToChatRequest(prepared.body, { model, stream, includeUsage: parts.upstreams.acceptsIncludeUsage(model), reasoning: isReasoningModel(model) });
    // Anthropic clients ask for more than some OpenAI models can give (Claude Code: 32000; gpt-4o: 16384): capped, not refused.
    const most = maxOutputTokens(model);
    for (const field of ['max_tokens', 'max_completion_tokens'] as const) {
      const asked = chat[field];
      if (most !== undefined && typeof asked === 'number' && asked > most) chat[field] = most;
    }
    const answer = await sendUpstream(request, parts, { model, method: 'POST', path: '/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat) });
    const { response } = answer;
    const status = response.statusCode;
    const timeouts = parts.config.upstream;
    const failure = (error: unknown): GatewayError => upstreamFailure(error, answer.upstream, timeouts);
    const headers = answerHeaders(request, answer);
    const contentType = String(response.headers['content-type'] ?? '');
    if (status >= 400 || (!stream && contentType.startsWith('text/event-stream'))) {
      const text = await response.body.text().catch(() => '');
      const message = `Upstream "${answer.upstream}" answered ${status}: ${upstreamErrorMessage(status, text, parts.upstreams.secrets())}`;
      const shown = status >= 400 ? status : 502;
      ctx.relayed({ usage: undefined, textSeen: undefined, firstByteAt: undefined, errorCode: upstreamStatusCode(shown) });
      reply.code(shown).headers(headers).header('content-type', 'application/json').send(anthropicErrorBody({ status: shown, message }));
      return shown;
    }
    if (!stream || !contentType.startsWith('text/event-stream')) {
      const completion = await readJsonAnswer(answer, failure, 'a chat completion');
      const message = chatCompletionToMessage(completion, model);
      ctx.relayed({ usage: usageFromObject(completion), textSeen: undefined, firstByteAt: undefined, errorCode: undefined });
      reply.code(200).headers(headers).header('content-type', 'application/json').send(JSON.stringify(message));
      return 200;
    }
    return streamTranslatedAnswer(request, reply, streams, answer, new ChatToMessagesStream(model), {
      usageOf: (event) => (isObject(event.usage) ? usageFromObject(event) : undefined),
      isEnd: () => false,
      failure,
      errorType: (error) => anthropicErrorType(error.status),
    });
  }

  const route: RouteAdapter<MessagesPrepared> = {
    format: 'anthropic',
    prepare,
    // count_tokens spends nothing: admitted on the model list and rpm alone.
    charge: (prepared) => (prepared.countTokens ? { tokens: 0, costUsd: 0 } : undefined),
    exchange,
    discard: (request) => {
      if (!request.raw.readableEnded) request.raw.resume();
    },
  };
  const handler = (request: FastifyRequest, reply: FastifyReply): Promise<void> => runPipeline(request, reply, runtime.current, route, finish);

  app.register(async (scope) => {
    // The body is read by the handler itself, with the /v1 limit (Claude Code's requests run to megabytes).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request: FastifyRequest, _payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void) => done(null));
    scope.route({ method: 'POST', url: '/v1/messages', config: { errorFormat: 'anthropic' }, handler });
    scope.route({ method: 'POST', url: '/v1/messages/count_tokens', config: { errorFormat: 'anthropic' }, handler });
  });
}
