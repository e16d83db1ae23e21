import type { ErrorFormat } from '../errors/index.js';

/** What the gateway learns about one request as it goes; read by the request log and metering. */
export interface RequestContext {
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  caller: string | undefined;
  model: string | undefined;
  upstream: string | undefined;
  /** Milliseconds from sending upstream to its response headers. */
  upstreamMs: number | undefined;
  /** Set once the request's log line is written, so hijacked streams are logged exactly once. */
  logged: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    ctx: RequestContext;
  }
  interface FastifyContextConfig {
    errorFormat?: ErrorFormat;
  }
}

export function newRequestContext(startedAt: number): RequestContext {
  return { startedAt, caller: undefined, model: undefined, upstream: undefined, upstreamMs: undefined, logged: false };
}
