import type { Caller } from '../auth/authenticator.js';
import type { ErrorFormat } from '../errors/index.js';
import type { EndpointKind } from '../policy/endpoints.js';
import type { Ticket } from '../policy/admission.js';
import type { Usage } from '../streaming/usage.js';

/** What the gateway learns about one request as it goes; read by the request log and metering. */
export interface RequestContext {
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  /** Set once authenticated: from then on the request is metered, whatever its outcome. */
  caller: Caller | undefined;
  kind: EndpointKind;
  /** The parsed JSON body, for usage estimates when the upstream reports none. */
  body: unknown;
  model: string | undefined;
  upstream: string | undefined;
  attempts: number | undefined;
  /** Milliseconds from sending upstream to its response headers. */
  upstreamMs: number | undefined;
  /** performance.now() of the first body byte sent to the client. */
  firstByteAt: number | undefined;
  usage: Usage | undefined;
  /** The generated text of a stream that ended without usage (estimates completion tokens). */
  textSeen: (() => string) | undefined;
  ticket: Ticket | undefined;
  /** The request was handed to the upstream: from then on an abort still costs the owner. */
  sent: boolean;
  /**
   * What to charge when the upstream reports no usage of its own: a batch's estimate (its lines'
   * prompts and max_tokens), set once the batch was created.
   */
  charge: { usage: Usage; costUsd: number | null } | undefined;
  aborted: boolean;
  errorCode: string | undefined;
  /** The real status of an error answered in the seed's envelope (sent with HTTP 200). */
  errorStatus: number | undefined;
  /** The route took the response over (a relayed body or a stream) and finishes the request itself. */
  hijacked: boolean;
  /** Set once the request's log line and usage record are written, so each happens exactly once. */
  done: boolean;
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
  return {
    startedAt,
    caller: undefined,
    kind: 'other',
    body: undefined,
    model: undefined,
    upstream: undefined,
    attempts: undefined,
    upstreamMs: undefined,
    firstByteAt: undefined,
    usage: undefined,
    textSeen: undefined,
    ticket: undefined,
    sent: false,
    charge: undefined,
    aborted: false,
    errorCode: undefined,
    errorStatus: undefined,
    hijacked: false,
    done: false,
  };
}
