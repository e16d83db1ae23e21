import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Caller } from '../auth/authenticator.js';
import { cacheKey } from '../cache/canonical-key.js';
import type { CachedAnswer } from '../cache/cached-answer.js';
import { CACHE_RESULT_HEADER, CACHE_TTL_HEADER, cacheDirectives, decideCaching, type CacheDecision } from '../cache/cache-policy.js';
import type { ResponseCache } from '../cache/response-cache.js';
import { ResponseRecorder } from '../cache/response-recorder.js';

/** What a route's answer depends on, for the response cache (RouteAdapter.cacheSubject). */
export interface CacheSubject {
  /** The route and its answer format, with the query when there is one. */
  readonly route: string;
  readonly stream: boolean;
  /** Anything else that changes the bytes the client gets for the same upstream body. */
  readonly variant: string;
  /** The body exactly as it is sent upstream. */
  readonly body: Record<string, unknown>;
  /** Why this request's answer must not be cached, if it must not (`n > 1`, `store`…). */
  readonly refusal: string | undefined;
  /** Whether the bytes written are a whole answer (a stream through its last event). */
  complete(body: Buffer): boolean;
}

/** Whose entries a caller reads and writes: its key's own, or its owner's group's. Never another key's. */
export function cachePartition(caller: Caller): string {
  const key = caller.key;
  if (key === undefined) return `${caller.kind}:${caller.name}`;
  return key.cacheGroup !== undefined ? `group:${key.cacheGroup}` : `key:${key.id}`;
}

/**
 * The cache's part in one request, from the lookup to the store. Made only for a request the
 * cache has something to do with (`cacheTurn`): for the others nothing here runs — no hashing,
 * no serialising, no await.
 */
export class CacheTurn {
  #key: string | undefined;
  #recorder: ResponseRecorder | undefined;
  #subject: CacheSubject | undefined;

  constructor(
    private readonly cache: ResponseCache,
    private readonly decision: CacheDecision,
  ) {}

  /**
   * The stored answer for `subject`, if any (a promise with a shared store). No subject: an
   * endpoint the cache does not serve (files, images…), left alone. Marks the request a bypass
   * when the cache may not take part (the request said no-store, or its body is not fit).
   */
  lookup(request: FastifyRequest, reply: FastifyReply, subject: CacheSubject | undefined): CachedAnswer | undefined | Promise<CachedAnswer | undefined> {
    const { decision } = this;
    if (subject === undefined) return undefined;
    if (subject.refusal !== undefined || (!decision.read && !decision.write)) {
      request.ctx.cache = 'bypass';
      reply.header(CACHE_RESULT_HEADER, 'bypass');
      return undefined;
    }
    this.#subject = subject;
    this.#key = cacheKey({ partition: cachePartition(request.ctx.caller!), route: subject.route, stream: subject.stream, variant: subject.variant, body: subject.body });
    return decision.read ? this.cache.get(this.#key, decision.maxAgeMs) : undefined;
  }

  /** Answers from the cache: status 200, the stored content type and bytes, marked a hit. Returns the status to record. */
  replay(request: FastifyRequest, reply: FastifyReply, answer: CachedAnswer): number {
    const ctx = request.ctx;
    ctx.cache = 'hit';
    ctx.usage = answer.usage;
    const client = reply.raw;
    reply.hijack();
    const headers: Record<string, string | string[] | number> = {};
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value as string | string[] | number;
    const limitHeaders = ctx.ticket?.headers;
    if (limitHeaders) for (const name in limitHeaders) headers[name] = limitHeaders[name]!;
    headers['content-type'] = answer.contentType;
    headers['content-length'] = answer.body.length;
    // An event stream replayed whole is still an event stream: proxies must not buffer or cache it either.
    if (answer.contentType.startsWith('text/event-stream')) {
      headers['cache-control'] = 'no-cache';
      headers['x-accel-buffering'] = 'no';
    }
    headers[CACHE_RESULT_HEADER] = 'hit';
    client.writeHead(200, headers);
    ctx.firstByteAt = performance.now();
    client.end(answer.body);
    return 200;
  }

  /** A miss the cache may store: marked, and the answer recorded on its way to the client. */
  miss(request: FastifyRequest, reply: FastifyReply): void {
    if (this.#key === undefined) return;
    request.ctx.cache = 'miss';
    reply.header(CACHE_RESULT_HEADER, 'miss');
    if (this.decision.write) this.#recorder = new ResponseRecorder(reply.raw, this.cache.maxEntryBytes);
  }

  /**
   * After the route answered: stores the answer when it is a whole success — status 200, no
   * error, the client still there, the stream through its end, within the entry limit.
   */
  store(request: FastifyRequest, reply: FastifyReply, status: number): void {
    const recorder = this.#recorder;
    const ctx = request.ctx;
    if (recorder === undefined || this.#key === undefined || status !== 200 || ctx.errorCode !== undefined || ctx.aborted) return;
    const client = reply.raw;
    // A reply Fastify sends may end after its onSend hooks, a moment after the route returned.
    if (client.writableEnded) this.#commit(recorder, ctx.usage);
    else if (!client.destroyed) client.once('finish', () => this.#commit(recorder, ctx.usage));
  }

  #commit(recorder: ResponseRecorder, usage: CachedAnswer['usage']): void {
    const body = recorder.body();
    if (recorder.status !== 200 || body === undefined || recorder.contentType === undefined || !this.#subject!.complete(body)) return;
    this.cache.set(this.#key!, { contentType: recorder.contentType, body, usage, storedAt: Date.now() }, this.decision.ttlMs);
  }
}

/** The cache's part in the request, or undefined when it has none (caching off for the caller, and not asked for). */
export function cacheTurn(request: FastifyRequest, cache: ResponseCache, caller: Caller): CacheTurn | undefined {
  const headers = request.headers;
  const decision = decideCaching(cache.settings, caller.key?.cacheTtl, cacheDirectives(headers['cache-control'], headers[CACHE_TTL_HEADER]));
  return decision === undefined ? undefined : new CacheTurn(cache, decision);
}
