import type { Caller } from '../auth/authenticator.js';
import type { ErrorFormat, RecordedErrorCode } from '../errors/index.js';
import type { EndpointKind } from '../policy/endpoints.js';
import type { Ticket } from '../policy/admission.js';
import type { Usage } from '../streaming/usage.js';
import type { RequestTrace } from '../observability/tracing.js';

/**
 * A request's steps, in order. Each is entered once; `finished` is entered exactly once, by the
 * one exit of the pipeline (or, for requests that never reached a pipeline route — health,
 * unknown paths, bodies Fastify refused — by the server's response hook).
 */
export type Step = 'received' | 'authenticated' | 'admitted' | 'sent' | 'relaying' | 'finished';

const ORDER: Readonly<Record<Step, number>> = { received: 0, authenticated: 1, admitted: 2, sent: 3, relaying: 4, finished: 5 };

/** What the relay of an answer came to, for metering. */
export interface Relayed {
  usage: Usage | undefined;
  /** For streams cut before their usage event: the text produced so far. */
  textSeen: (() => string) | undefined;
  /** performance.now() of the first body byte written to the client. */
  firstByteAt: number | undefined;
  errorCode: RecordedErrorCode | undefined;
}

/**
 * One request's life: who called, what it asked for, what the upstream did, what it cost. The
 * steps move forward only (`authenticated()` → `admitted()` → `sending()` → `answered()` →
 * `relayed()`), each filling in what it learnt; `finishing()` is true once, for the one place
 * that writes the request's log line and usage record (pipeline/finish.ts).
 */
export class GatewayRequest {
  #step: Step = 'received';
  #abort: AbortController | undefined;
  caller: Caller | undefined = undefined;
  kind: EndpointKind = 'other';
  /** The model as sent upstream (aliases applied), the usage record's model. */
  model: string | undefined = undefined;
  /** The parsed request body, for estimates when the upstream reports no usage. */
  body: unknown = undefined;
  ticket: Ticket | undefined = undefined;
  upstream: string | undefined = undefined;
  attempts: number | undefined = undefined;
  /** Milliseconds from sending upstream to its response headers (or to the send's failure). */
  upstreamMs: number | undefined = undefined;
  /** performance.now() when the request was sent upstream. */
  sentAt: number | undefined = undefined;
  /** Gateway time to the response head, the upstream's wait excluded: set when the head is written (x-openai-api-overhead-ms). */
  overheadMs: number | undefined = undefined;
  /** The endpoint table's name for the request (`POST /v1/chat/completions`), once a route classified it: a bounded metrics label. */
  endpoint: string | undefined = undefined;
  firstByteAt: number | undefined = undefined;
  usage: Usage | undefined = undefined;
  textSeen: (() => string) | undefined = undefined;
  /**
   * What to charge when the upstream reports no usage of its own: a batch's estimate (its lines'
   * prompts and max_tokens), set once the batch was created.
   */
  charge: { usage: Usage; costUsd: number | null } | undefined = undefined;
  /** The client left before the answer was complete. */
  aborted = false;
  errorCode: RecordedErrorCode | undefined = undefined;
  /** The real status of an error answered in the seed's envelope (sent with HTTP 200). */
  errorStatus: number | undefined = undefined;
  /** A pipeline route owns this request's end (its one exit finishes it). */
  pipelined = false;
  /** The request's span, when tracing is on (started in the server's onRequest hook, ended by finish). */
  trace: RequestTrace | undefined = undefined;
  /** The /api/chat conversation the request named (issue 16), for its usage record. */
  conversationId: string | undefined = undefined;
  /** What the response cache did: answered (`hit`), will store the answer (`miss`), was told or found it may not (`bypass`); undefined when caching is off for the request. */
  cache: 'hit' | 'miss' | 'bypass' | undefined = undefined;

  constructor(readonly startedAt: number) {}

  /** The upstream had the request: from then on an abort still costs the owner. */
  get sent(): boolean {
    return this.#sent;
  }
  #sent = false;

  /**
   * Set by `deferUsage()`: the answer's usage gets a record of its own later (a background
   * response's, when first seen finished), so this request's record carries none — no estimate either.
   */
  get usageDeferred(): boolean {
    return this.#usageDeferred;
  }
  #usageDeferred = false;

  /**
   * Hands the request's reservation to whoever records its usage later (ownership/background-usage.ts);
   * the request's own finish then neither settles nor refunds it.
   */
  deferUsage(): Ticket | undefined {
    this.#usageDeferred = true;
    const ticket = this.ticket;
    this.ticket = undefined;
    return ticket;
  }

  /** Aborted when the client leaves; created on first use (most requests never need it). */
  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    return this.#abort.signal;
  }

  /** The client closed its connection before the answer was complete. */
  clientLeft(): void {
    this.aborted = true;
    this.#abort?.abort();
  }

  authenticated(caller: Caller): void {
    this.#advance('authenticated');
    this.caller = caller;
  }

  admitted(ticket: Ticket): void {
    this.#advance('admitted');
    this.ticket = ticket;
  }

  sending(at: number): void {
    this.#advance('sent');
    this.#sent = true;
    this.sentAt = at;
  }

  /**
   * The gateway's own time at `now` (performance.now()): since the request came in, minus the
   * wait for the upstream's response headers — all of it for a request never sent, and up to the
   * send for one still waiting (an event stream committed before the upstream answered).
   */
  overheadAt(now: number): number {
    const upstream = this.upstreamMs ?? (this.sentAt === undefined ? 0 : now - this.sentAt);
    return now - this.startedAt - upstream;
  }

  /** The response head is being written at `now`: fixes and returns the overhead. */
  headWritten(now: number): number {
    this.overheadMs ??= this.overheadAt(now);
    return this.overheadMs;
  }

  answered(upstream: string, attempts: number, upstreamMs: number): void {
    this.#advance('relaying');
    this.upstream = upstream;
    this.attempts = attempts;
    this.upstreamMs = upstreamMs;
  }

  relayed(outcome: Relayed): void {
    this.usage = outcome.usage;
    this.textSeen = outcome.textSeen;
    this.firstByteAt = outcome.firstByteAt;
    this.errorCode = outcome.errorCode;
  }

  /** True exactly once: the caller writes the log line and the usage record. */
  finishing(): boolean {
    if (this.#step === 'finished') return false;
    this.#step = 'finished';
    return true;
  }

  #advance(step: Step): void {
    if (ORDER[step] <= ORDER[this.#step]) throw new Error(`request step ${step} after ${this.#step}`);
    this.#step = step;
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    ctx: GatewayRequest;
  }
  interface FastifyContextConfig {
    errorFormat?: ErrorFormat;
  }
}
