import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { AppKey } from '../auth/app-key.js';
import type { Caller } from '../auth/authenticator.js';
import type { Config } from '../config/index.js';
import { GatewayError, sseErrorEvent, upstreamStatusCode } from '../errors/index.js';
import { canonicalPath } from '../http/canonical-path.js';
import { tooLarge } from '../http/read-body.js';
import { clientResponseHeaders, upstreamRequestHeaders } from '../http/relay-headers.js';
import { SSE_HEADERS } from '../http/sse-response.js';
import { objectsInAnswer } from '../ownership/answers.js';
import type { BackgroundUsage } from '../ownership/background-usage.js';
import { ownerIdOf, type Ownership, type OwnedObject, type PendingUsage } from '../ownership/ownership.js';
import { objectReferences, type Reference } from '../ownership/references.js';
import { checkBatchInput } from '../policy/batch-input.js';
import { confine } from '../policy/confine.js';
import { classify, type Endpoint, type ObjectKind } from '../policy/endpoints.js';
import { relayBody } from '../streaming/relay-response.js';
import { SSE_KEEPALIVE } from '../streaming/sse-usage-tap.js';
import type { UpstreamAnswer } from '../upstream/client.js';
import { upstreamErrorMessage } from '../upstream/error-body.js';
import { redactSecrets } from '../upstream/redact.js';
import { blankedErrorBody, peekBody } from '../upstream/replay-body.js';
import { upstreamFailure } from '../upstream/failure.js';
import type { ActiveStreams } from '../http/active-streams.js';
import type { RequestFinisher } from '../pipeline/finish.js';
import { runPipeline, sendUpstream, type Prepared, type RouteAdapter } from '../pipeline/pipeline.js';
import type { CacheSubject } from '../pipeline/cache-step.js';
import { uncacheableBody } from '../cache/cache-policy.js';
import type { Runtime, RuntimeParts } from '../runtime.js';
import type { PoolResponse } from '../upstream/pool.js';
import { chatViaMessages } from './chat-via-messages.js';
import { listOwnedObjects } from './v1-lists.js';
import { readV1Body, type V1Body } from './v1-body.js';

export interface V1Deps {
  runtime: Runtime;
  finish: RequestFinisher;
  streams: ActiveStreams;
  ownership: Ownership;
  backgroundUsage: BackgroundUsage;
}

const HTML_TYPE = /^\s*text\/html\b/i;
/** Answers that create or describe an object are read this far for the ids they carry. */
const ANSWER_PEEK_LIMIT = 1024 * 1024;
/** The first `"id"` of a JSON answer too large to parse whole (OpenAI puts the id first). */
const HEAD_ID = /^\s*\{\s*"id"\s*:\s*"([^"\\]{1,256})"/;
/** Answers of object endpoints that may name files the caller's object produced. */
const PRODUCED_FILES = /"(?:output_file_id|error_file_id|result_files|file)"\s*:/;
/**
 * The objects whose answers name the files they produced (a batch's output, a completed upload's
 * file, a fine-tuning job's results) — and only those: a file's *content* is the caller's own
 * bytes, and reading ids out of it would let a key claim any file by uploading its id.
 */
const PRODUCES_FILES: ReadonlySet<ObjectKind> = new Set(['batch', 'upload', 'fine_tuning_job']);
/** The answers that show a response as it is now, so a finished background response with its usage. */
const SHOWS_RESPONSE: ReadonlySet<string> = new Set(['GET /v1/responses/{id}', 'POST /v1/responses/{id}/cancel']);

/** What /v1 decided about a request before admission. */
interface V1Prepared extends Prepared {
  admitModel: string | undefined;
  method: string;
  /** The canonical path below /v1, without the query. */
  path: string;
  query: string;
  endpoint: Endpoint | undefined;
  body: V1Body;
  /** The upstream and upstream key holding the object the request uses or continues. */
  affinity: OwnedObject | undefined;
  /** The kind of object the answer creates, when it creates one. */
  creates: ObjectKind | undefined;
  /** A background response: its usage comes later, recorded on its own (ownership/background-usage.ts). */
  background: boolean;
  /** A background response whose usage is still to be recorded, which this request's answer may show finished. */
  settles: OwnedObject | undefined;
  /** An app key's list, filtered to its own objects. */
  listing: boolean;
  batch: BatchCharge | undefined;
  /** `GET /v1/models`, answered by the gateway itself. */
  models: boolean;
  /** Chat completions for a model only an Anthropic upstream serves: translated (routes/chat-via-messages.ts). */
  viaMessages: boolean;
}

const NO_BODY: V1Body = Object.freeze({ body: null, contentLength: undefined, contentType: undefined, json: undefined, stream: false, usageInjected: false, exceeded: () => false });

/** What a batch is charged: the estimate of its input file's lines. */
interface BatchCharge {
  tokens: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

/**
 * A refused request's body is not read: a multipart reader is stopped (it drains the rest), a
 * counted upload unhooked, and the request left to drain, so the connection carries the answer.
 */
function discardBody(raw: IncomingMessage, body: V1Body['body']): void {
  if (body instanceof Readable && body !== raw) {
    raw.unpipe();
    body.destroy();
  }
  if (!raw.readableEnded) raw.resume();
}

/**
 * Everything under /v1 is relayed to the upstream with the server-held key, on one canonical
 * path. The endpoint table (policy/endpoints.ts) says what each known endpoint lets the gateway
 * enforce; app keys are confined to endpoints that hold their limits and to their own objects
 * (ownership/), access tokens may use any path — an endpoint OpenAI adds tomorrow works for them
 * without a code change.
 */
export function v1Routes(app: FastifyInstance, _startConfig: Config, deps: V1Deps): void {
  const { runtime, finish, streams, ownership, backgroundUsage } = deps;

  /** Every object the body names must be the caller's; the one to follow (a previous response first) gives the affinity. */
  async function checkReferences(caller: Caller, references: readonly Reference[]): Promise<OwnedObject | undefined> {
    let affinity: OwnedObject | undefined;
    for (const reference of references) {
      const found = await ownership.authorize(caller, reference.kind, reference.id);
      if (found !== undefined && (affinity === undefined || reference.kind === 'response')) affinity = found;
    }
    return affinity;
  }

  /** Reads a batch's input file from the upstream that holds it and checks each line against the key. */
  async function checkBatch(parts: RuntimeParts, key: AppKey, json: Record<string, unknown>, affinity: OwnedObject | undefined, signal: AbortSignal): Promise<BatchCharge> {
    const fileId = json.input_file_id;
    const batchEndpoint = json.endpoint;
    if (typeof fileId !== 'string' || typeof batchEndpoint !== 'string') {
      throw new GatewayError('invalid_request', 'A batch needs "input_file_id" and "endpoint" (strings).', { param: typeof fileId !== 'string' ? 'input_file_id' : 'endpoint' });
    }
    const { response } = await parts.upstreams.send({ model: undefined, method: 'GET', path: `/files/${encodeURIComponent(fileId)}/content`, headers: {}, body: null, signal, affinity: affinity ? { upstream: affinity.upstream, upstreamKey: affinity.upstreamKey } : undefined });
    if (response.statusCode !== 200) {
      await response.body.dump().catch(() => undefined);
      throw new GatewayError('invalid_request', `The batch input file ${fileId} could not be read for checking (the upstream answered ${response.statusCode}).`, { param: 'input_file_id' });
    }
    const { createInterface } = await import('node:readline');
    const lines = createInterface({ input: response.body, crlfDelay: Infinity });
    try {
      const estimate = await checkBatchInput(lines, key, batchEndpoint, { estimate: key.needsTokenEstimate, prices: parts.prices });
      return { tokens: estimate.promptTokens + estimate.completionTokens, promptTokens: estimate.promptTokens, completionTokens: estimate.completionTokens, costUsd: estimate.costUsd };
    } finally {
      lines.close();
      response.body.destroy();
    }
  }

  /**
   * Records the objects an answer hands the caller, reading the answer's start (or all of it, when
   * small); `pending` marks the response it creates as a background one. Returns the body to relay
   * and the record of the object created.
   */
  async function recordAnswerObjects(caller: Caller, answer: UpstreamAnswer, body: Dispatcher.ResponseData['body'], creates: ObjectKind | undefined, pending: PendingUsage | undefined): Promise<{ body: Dispatcher.ResponseData['body']; created: OwnedObject | undefined }> {
    const peeked = await peekBody(body, ANSWER_PEEK_LIMIT);
    let found: Reference[] = [];
    if (peeked.complete) {
      if (creates !== undefined || PRODUCED_FILES.test(peeked.text)) {
        try {
          found = objectsInAnswer(JSON.parse(peeked.text), creates);
        } catch {
          found = [];
        }
      }
    } else if (creates !== undefined) {
      const id = HEAD_ID.exec(peeked.text)?.[1];
      if (id !== undefined) found = [{ kind: creates, id }];
    }
    const owned = found.map((reference) => ownedBy(caller, answer, reference, reference.kind === creates ? pending : undefined));
    if (owned.length > 0) await ownership.record(owned);
    return { body: peeked.body, created: owned.find((object) => object.kind === creates) };
  }

  function ownedBy(caller: Caller, answer: UpstreamAnswer, reference: Reference, pending?: PendingUsage): OwnedObject {
    const object: OwnedObject = { id: reference.id, kind: reference.kind, keyId: ownerIdOf(caller), upstream: answer.upstream, upstreamKey: answer.upstreamKey, createdAt: new Date() };
    if (pending !== undefined) object.pendingUsage = pending;
    return object;
  }

  /** A background response's creation: its usage is the response's, recorded later; a key with limits keeps its reservation until then. */
  function deferToResponse(request: FastifyRequest, id: string): void {
    const reservation = request.ctx.deferUsage();
    if (request.ctx.caller?.key?.limited === true) backgroundUsage.hold(id, reservation);
  }

  /** Everything before admission: the canonical path, the endpoint's policy, the body, the objects it names. */
  async function prepare(request: FastifyRequest, _reply: FastifyReply, parts: RuntimeParts, caller: Caller): Promise<V1Prepared> {
    const ctx = request.ctx;
    const { config, upstreams } = parts;
    const key = caller.key;
    const { path: fullPath, query } = canonicalPath(request.url);
    if (!fullPath.startsWith('/v1/')) throw new GatewayError('not_found', `No route for ${request.method} ${fullPath}.`);
    const path = fullPath.slice('/v1'.length);
    const method = request.method;
    const found = classify(method, path);
    if (!found.known && found.upstreamSpecific) {
      throw new GatewayError('not_found', `${method} ${fullPath} addresses one upstream's own layout; call the OpenAI path (e.g. /v1/chat/completions) and the gateway chooses the deployment.`);
    }
    const endpoint = found.known ? found.endpoint : undefined;
    if (endpoint !== undefined && endpoint.name.startsWith('POST /v1/messages')) {
      // Another spelling of the Messages API's path (`/v1//messages`, an escape): that route alone speaks it.
      throw new GatewayError('not_found', `The Messages API is served at ${endpoint.name.slice('POST '.length)}, spelled exactly.`);
    }
    ctx.kind = endpoint?.kind ?? 'other';
    ctx.endpoint = endpoint?.name;
    const granted = key?.endpoints?.allows(method, fullPath) === true;
    if (key !== undefined && !granted) confine(key, method, fullPath, endpoint);
    const prepared: V1Prepared = { admitModel: undefined, method, path, query, endpoint, body: NO_BODY, affinity: undefined, creates: undefined, background: false, settles: undefined, listing: false, batch: undefined, models: false, viaMessages: false };
    if (method === 'GET' && path === '/models') {
      prepared.models = true;
      return prepared;
    }
    if (method === 'GET' && key?.models !== undefined && path.startsWith('/models/') && !key.models.matches(path.slice('/models/'.length))) {
      throw new GatewayError('model_not_found', `The model \`${path.slice('/models/'.length, 264)}\` does not exist or key "${key.name}" may not use it.`);
    }
    const object = endpoint?.object;
    if (object?.does === 'use' && found.known && found.id !== undefined) {
      const used = await ownership.authorize(caller, object.kind, found.id);
      prepared.affinity = used;
      if (used?.pendingUsage !== undefined && used.pendingUsage.recordedAt === undefined && SHOWS_RESPONSE.has(found.endpoint.name)) prepared.settles = used;
    }
    if (object?.does === 'list' && key !== undefined) {
      prepared.listing = true;
      // A cursor is one of the caller's own objects; another's would tell where that object sits in the list.
      const params = new URLSearchParams(query.slice(1));
      for (const cursor of [params.get('after'), params.get('before')]) if (cursor !== null && cursor !== '') await ownership.authorize(caller, object.kind, cursor);
    }
    const body = await readV1Body(request, caller, endpoint, { config, includeUsage: (model) => upstreams.acceptsIncludeUsage(model), limit: config.server.v1BodyLimit });
    prepared.body = body;
    try {
      const json = body.json;
      prepared.creates = object?.does === 'create' ? object.kind : endpoint?.kind === 'chat' && json?.store === true ? 'chat_completion' : undefined;
      prepared.background = prepared.creates === 'response' && json?.background === true;
      if (json !== undefined && endpoint?.references) prepared.affinity = (await checkReferences(caller, key ? objectReferences(json) : ownReferences(json))) ?? prepared.affinity;
      prepared.admitModel = ctx.model;
      if (endpoint?.kind === 'chat' && ctx.model !== undefined && json !== undefined) {
        const protocols = upstreams.protocolsFor(ctx.model);
        prepared.viaMessages = !protocols.openai && protocols.anthropic;
      }
      if (key === undefined || endpoint === undefined || granted) return prepared;
      if (endpoint.name === 'POST /v1/batches' && json !== undefined) {
        prepared.batch = await checkBatch(parts, key, json, prepared.affinity, ctx.signal);
      } else if (key.models !== undefined && endpoint.modelAt !== undefined && ctx.model === undefined) {
        // The upstream would pick a model itself; the key's model list must hold for that one too.
        if (endpoint.defaultModel !== undefined) prepared.admitModel = endpoint.defaultModel;
        else if (object?.does !== 'use') throw new GatewayError('invalid_request', `"model" is required: key "${key.name}" may use only some models.`, { param: 'model' });
      }
      return prepared;
    } catch (error) {
      discardBody(request.raw, body.body);
      throw error;
    }
  }

  /** Sends the request and relays the answer as it comes: bytes through, usage read on the way. */
  async function exchange(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, prepared: V1Prepared): Promise<number> {
    if (prepared.models) return listModels(request, reply, parts);
    if (prepared.viaMessages) {
      const { json, stream, usageInjected } = prepared.body;
      const options = json?.stream_options as { include_usage?: unknown } | undefined;
      return chatViaMessages(request, reply, parts, streams, { model: request.ctx.model!, chat: json!, stream, includeUsage: options?.include_usage === true && !usageInjected });
    }
    const ctx = request.ctx;
    const { config, upstreams } = parts;
    const timeouts = config.upstream;
    const limit = config.server.v1BodyLimit;
    const caller = ctx.caller!;
    const { body: outgoing, path, query, listing, creates, affinity, background, settles } = prepared;
    const object = prepared.endpoint?.object;
    const early = outgoing.stream ? new EarlyStream(reply, config.sseKeepaliveMs) : undefined;
    let answer: PoolResponse;
    try {
      answer = await sendUpstream(
        request,
        parts,
        {
          model: ctx.model,
          method: request.method as Dispatcher.HttpMethod,
          // A caller's list is read from the upstream in its largest pages and filtered to its own objects.
          path: path + (listing ? listQuery(query) : query),
          headers: upstreamRequestHeaders(request.headers, outgoing.contentLength, outgoing.contentType),
          body: outgoing.body,
          affinity: affinity ? { upstream: affinity.upstream, upstreamKey: affinity.upstreamKey } : undefined,
        },
        () => {
          // The upload itself was refused on its way (over the limit, a second multipart "model").
          const bodyError = outgoing.body instanceof Readable ? outgoing.body.errored : null;
          return outgoing.exceeded() ? tooLarge(limit) : bodyError instanceof GatewayError ? bodyError : undefined;
        },
      );
    } catch (error) {
      early?.cancel();
      if (early?.committed && error instanceof GatewayError) {
        ctx.errorCode = error.code;
        early.fail(error);
        return error.status;
      }
      throw error;
    }
    const { response } = answer;
    const status = response.statusCode;
    const contentType = String(response.headers['content-type'] ?? '');
    const isSse = status < 400 && contentType.startsWith('text/event-stream');
    if (prepared.batch !== undefined && status < 400) {
      const { promptTokens, completionTokens, costUsd } = prepared.batch;
      ctx.charge = { usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedTokens: 0, reasoningTokens: 0 }, costUsd };
    }

    if (early?.committed && !isSse) {
      // We already promised the client an event stream; deliver the upstream's answer as an error event.
      const text = await response.body.text().catch(() => '');
      const error = new GatewayError('upstream_error', `Upstream "${answer.upstream}" answered ${status}: ${upstreamErrorMessage(status, text, upstreams.secrets())}`);
      ctx.errorCode = error.code;
      early.fail(error);
      return status;
    }
    early?.cancel();
    if (prepared.endpoint !== undefined && status < 400 && HTML_TYPE.test(contentType)) {
      // A known endpoint answers JSON or an event stream; a 200 HTML page is a proxy's or login
      // wall's page, or a base_url pointing at a website. Relaying it would hand the SDK a page it cannot parse.
      await response.body.dump().catch(() => undefined);
      throw new GatewayError('upstream_error', `Upstream "${answer.upstream}" answered ${status} with an HTML page instead of the API's JSON; check its base_url.`);
    }
    if (listing && object !== undefined && status === 200 && !isSse) {
      const page = await listOwnedObjects({ caller, kind: object.kind, query, first: response.body, ownership, failure: (error) => upstreamFailure(error, answer.upstream, timeouts), next: async (after) => (await upstreams.send({ model: undefined, method: 'GET', path: `${path}${listQuery(query, after)}`, headers: {}, body: null, signal: ctx.signal })).response });
      reply.header('content-type', 'application/json; charset=utf-8').send(page);
      return 200;
    }

    const headers = clientResponseHeaders(response.headers as Record<string, string | string[] | undefined>, !isSse);
    let body = response.body;
    if (status >= 400 && !isSse) {
      body = await blankedErrorBody(body, (text) => redactSecrets(text, upstreams.secrets()), headers).catch((error: unknown) => {
        throw upstreamFailure(error, answer.upstream, timeouts);
      });
    }
    // The background response this answer creates: its usage is recorded once it is seen finished.
    let created: OwnedObject | undefined;
    let recorded: Promise<void> | undefined;
    const pending = background && status < 400 ? { model: ctx.model ?? null, recordedAt: undefined } : undefined;
    if (status < 400 && !isSse && (creates !== undefined || (caller.key !== undefined && object?.does === 'use' && PRODUCES_FILES.has(object.kind)))) {
      const read = await recordAnswerObjects(caller, answer, body, creates, pending).catch((error: unknown) => {
        throw upstreamFailure(error, answer.upstream, timeouts);
      });
      body = read.body;
      if (pending !== undefined) created = read.created;
    }
    headers['x-openai-api-upstream'] = answer.upstream;
    headers['x-openai-api-attempts'] = String(answer.attempts);
    const limitHeaders = ctx.ticket?.headers;
    if (limitHeaders) for (const name in limitHeaders) headers[name] = limitHeaders[name]!;
    if (created !== undefined) deferToResponse(request, created.id);
    const client = reply.raw;
    if (!early?.committed) {
      reply.hijack();
      client.writeHead(status, { ...(reply.getHeaders() as Record<string, string | string[]>), ...headers, ...(isSse ? SSE_HEADERS : {}) });
      if (isSse) client.flushHeaders();
    }
    const failure = (error: unknown): GatewayError => upstreamFailure(error, answer.upstream, timeouts);
    const onObjectId =
      isSse && creates !== undefined
        ? (id: string): void => {
            const owned = ownedBy(caller, answer, { kind: creates, id }, pending);
            recorded = ownership.record([owned]);
            if (pending === undefined) return;
            created = owned;
            deferToResponse(request, id);
          }
        : undefined;
    const unregister = streams.add((error) => body.destroy(error));
    // A response whose usage is still to come is read for it; the retrieve itself is not metered.
    const meter = (ctx.kind !== 'other' || settles !== undefined) && status < 400;
    const outcome = await relayBody(client, body, isSse, { meter, dropUsageEvent: outgoing.usageInjected, expectDone: ctx.kind !== 'other', keepaliveMs: config.sseKeepaliveMs, failure, secrets: upstreams.secrets(), onObjectId }, () => ctx.clientLeft());
    unregister();
    const finished = created ?? settles;
    const usage = outcome.usage;
    if (finished !== undefined && usage !== undefined) {
      // Its own record, charged to the key that created it, once; after the client has the answer.
      const seen = { requestId: request.id, upstream: answer.upstream };
      // A stream's record of the response may still be on its way to the database, where the claim looks.
      void Promise.resolve(recorded).then(() => backgroundUsage.settle(finished, usage, seen));
    }
    const own = ctx.usageDeferred || settles !== undefined ? undefined : outcome;
    ctx.relayed({ usage: own?.usage, textSeen: own?.textSeen, firstByteAt: outcome.firstByteAt, errorCode: outcome.error?.code ?? (status >= 400 ? upstreamStatusCode(status) : undefined) });
    if (outcome.aborted) {
      ctx.aborted = true;
      return 499;
    }
    return status;
  }

  /** The union of models the caller's key may use, across every upstream. */
  async function listModels(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts): Promise<number> {
    const allowed = request.ctx.caller?.key?.models;
    const data = (await parts.models.models()).filter((model) => !allowed || allowed.matches(model.id));
    if (request.headers['anthropic-version'] !== undefined) {
      // An Anthropic client (its SDK sends anthropic-version on every call): the same models in Anthropic's list shape.
      const models = data.map((model) => ({ type: 'model', id: model.id, display_name: model.id, created_at: new Date((typeof model.created === 'number' ? model.created : 0) * 1000).toISOString() }));
      reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({ data: models, has_more: false, first_id: models[0]?.id ?? null, last_id: models.at(-1)?.id ?? null }));
      return 200;
    }
    reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({ object: 'list', data }));
    return 200;
  }

  const route: RouteAdapter<V1Prepared> = {
    format: 'openai',
    prepare,
    charge: (prepared) => prepared.batch && { tokens: prepared.batch.tokens, costUsd: prepared.batch.costUsd },
    exchange,
    discard: (request, prepared) => discardBody(request.raw, prepared.body.body),
    cacheSubject,
  };
  const handler = (request: FastifyRequest, reply: FastifyReply): Promise<void> => runPipeline(request, reply, runtime.current, route, finish);

  app.register(async (scope) => {
    // Bodies under /v1 are read (JSON) or streamed (uploads) by the handler itself, with its own limit.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request: FastifyRequest, _payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void) => done(null));
    scope.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/v1/*', config: { errorFormat: 'openai' }, handler });
  });
}

/** The endpoints whose answers the response cache keeps: generation that is a pure function of its body. */
const CACHED_KINDS: ReadonlySet<string> = new Set(['chat', 'completions', 'embeddings']);
/** How an OpenAI event stream ends when it is whole. */
const STREAM_END = 'data: [DONE]';

/**
 * What a /v1 answer depends on, for the response cache: the body exactly as it goes upstream
 * (the caller's own bytes when the gateway changed nothing, else what it wrote: the key's
 * defaults, persona and ceiling, the alias, the usage request), the endpoint and query, and
 * whether the gateway drops the usage event from the stream the client sees.
 */
function cacheSubject(_request: FastifyRequest, prepared: V1Prepared): CacheSubject | undefined {
  const endpoint = prepared.endpoint;
  const { body, json, stream, usageInjected } = prepared.body;
  if (endpoint === undefined || !CACHED_KINDS.has(endpoint.kind) || json === undefined || body === null) return undefined;
  let sent: unknown = json;
  if (typeof body === 'string') sent = JSON.parse(body);
  else if (!Buffer.isBuffer(body)) return undefined;
  const route = prepared.query === '' ? endpoint.name : endpoint.name + prepared.query;
  return { route, stream, variant: usageInjected ? 'usage-dropped' : '', body: sent as Record<string, unknown>, refusal: uncacheableBody(sent as Record<string, unknown>), complete: stream ? streamComplete : () => true };
}

function streamComplete(body: Buffer): boolean {
  let end = body.length;
  while (end > 0 && (body[end - 1] === 0x0a || body[end - 1] === 0x0d)) end--;
  return end >= STREAM_END.length && body.toString('latin1', end - STREAM_END.length, end) === STREAM_END;
}

/** For unrestricted callers only the object a request continues decides the affinity: no walk of the whole body. */
function ownReferences(json: Record<string, unknown>): Reference[] {
  const out: Reference[] = [];
  if (typeof json.previous_response_id === 'string') out.push({ kind: 'response', id: json.previous_response_id });
  if (typeof json.input_file_id === 'string') out.push({ kind: 'file', id: json.input_file_id });
  return out;
}

/** The query of an upstream list page read for filtering: the caller's filters, the largest page, and the cursor. */
function listQuery(query: string, after?: string): string {
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
  params.set('limit', '100');
  if (after !== undefined) params.set('after', after);
  return `?${params.toString()}`;
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
    this.reply.raw.end(sseErrorEvent(error));
  }
}
