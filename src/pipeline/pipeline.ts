import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Caller } from '../auth/authenticator.js';
import { sendError, sseErrorFrame, toGatewayError, type ErrorFormat, type GatewayError } from '../errors/index.js';
import type { Estimate } from '../limits/index.js';
import type { PoolRequest, PoolResponse } from '../upstream/pool.js';
import { upstreamFailure } from '../upstream/failure.js';
import type { RuntimeParts } from '../runtime.js';
import { authenticateRequest } from './authenticate.js';
import { cacheTurn, type CacheSubject } from './cache-step.js';
import type { RequestFinisher } from './finish.js';

/** What a route decided before admission. */
export interface Prepared {
  /** The model checked against the key's list (an endpoint's default when none is sent). */
  readonly admitModel: string | undefined;
}

/**
 * A route over the pipeline: it reads its body into what to send (`prepare`), and sends and
 * renders the answer (`exchange`: pass-through, the seed's envelope, an event stream). The
 * pipeline does the rest, the same for every route: authenticate, admit, finish — once.
 */
export interface RouteAdapter<P extends Prepared> {
  /** How errors are rendered before any byte of the answer is sent. */
  readonly format: ErrorFormat;
  prepare(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, caller: Caller): Promise<P>;
  /**
   * A charge the route computed itself (a batch's lines); undefined lets admission bound the
   * prompt in `ctx.body` (its bytes, tokenized only near the key's headroom).
   */
  charge?(prepared: P): Estimate | undefined;
  /** Sends upstream and renders the answer; returns the status to record. */
  exchange(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, prepared: P): Promise<number>;
  /** The request was refused after `prepare`: release what it holds (a streamed upload). */
  discard(request: FastifyRequest, prepared: P): void;
  /**
   * What the answer depends on, for the response cache: called only when caching is on for the
   * caller (or asked for), after admission; undefined when the request is not one the cache serves.
   */
  cacheSubject?(request: FastifyRequest, prepared: P): CacheSubject | undefined;
}

/**
 * One request through one route: received → authenticated → (prepared) → admitted → sent →
 * relaying → finished. Errors are rendered here, in the route's format, and the request is
 * finished here, on every path, exactly once.
 */
export async function runPipeline<P extends Prepared>(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, route: RouteAdapter<P>, finish: RequestFinisher): Promise<void> {
  const ctx = request.ctx;
  ctx.pipelined = true;
  let status: number;
  try {
    const caller = await authenticateRequest(request, reply, parts.auth);
    const prepared = await route.prepare(request, reply, parts, caller);
    try {
      const charge = route.charge?.(prepared);
      const ticket = charge === undefined ? parts.admission.admitPrompt(caller, prepared.admitModel, ctx.kind, ctx.body) : parts.admission.admit(caller, prepared.admitModel, () => charge);
      ctx.admitted(ticket instanceof Promise ? await ticket : ticket);
    } catch (error) {
      route.discard(request, prepared);
      throw error;
    }
    // After admission: a hit counts toward the key's request limits like any answer.
    const cache = route.cacheSubject === undefined ? undefined : cacheTurn(request, parts.cache, caller);
    const found = cache?.lookup(request, reply, route.cacheSubject!(request, prepared));
    const answer = found instanceof Promise ? await found : found;
    if (answer !== undefined) {
      status = cache!.replay(request, reply, answer);
    } else {
      cache?.miss(request, reply);
      status = await route.exchange(request, reply, parts, prepared);
      cache?.store(request, reply, status);
    }
  } catch (error) {
    status = ctx.aborted ? 499 : renderFailure(request, reply, error, route.format);
  }
  finish(request, status);
}

/** The one place a failure becomes the client's answer on a pipeline route; returns the status to record. */
function renderFailure(request: FastifyRequest, reply: FastifyReply, error: unknown, format: ErrorFormat): number {
  const failure = toGatewayError(error);
  if (failure.code === 'internal_error') request.log.error({ err: error }, 'unhandled error');
  const ctx = request.ctx;
  ctx.errorCode = failure.code;
  const client = reply.raw;
  if (client.headersSent) {
    // An answer already began (an event stream committed early): it can only end with an error event.
    if (!client.writableEnded) client.end(sseErrorFrame(format, failure));
    return failure.status;
  }
  ctx.errorStatus = failure.status;
  sendError(request, reply, failure);
  return failure.status;
}

/**
 * Sends the request upstream on the request's abort signal, timing it: the step every route
 * shares. A client gone meanwhile is a 499 (no answer to render); other failures become the
 * catalogue's upstream errors (or `bodyError`, when the caller's own upload failed on its way).
 */
export async function sendUpstream(request: FastifyRequest, parts: RuntimeParts, call: Omit<PoolRequest, 'signal'>, bodyError?: () => GatewayError | undefined): Promise<PoolResponse> {
  const ctx = request.ctx;
  const sentAt = performance.now();
  ctx.sending(sentAt);
  let answer: PoolResponse;
  try {
    answer = await parts.upstreams.send({ ...call, signal: ctx.signal });
  } catch (error) {
    // The wait was the upstream's, not the gateway's overhead.
    ctx.upstreamMs = performance.now() - sentAt;
    if (ctx.aborted) throw new ClientLeft();
    throw bodyError?.() ?? upstreamFailure(error, 'upstream', parts.config.upstream);
  }
  ctx.answered(answer.upstream, answer.attempts, performance.now() - sentAt);
  return answer;
}

/** The client left while the request was under way: nothing to render, the request ends as 499. */
export class ClientLeft extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientLeft';
  }
}
