import { performance } from 'node:perf_hooks';
import { GatewayError, toGatewayError } from '../errors/index.js';
import { assertJsonDepth } from '../http/json-depth.js';
import type { Ticket } from '../policy/admission.js';
import { checkedModel } from '../policy/model-name.js';
import { resolveAlias } from '../policy/model-rules.js';
import { usageFromObject } from '../streaming/usage.js';
import type { RuntimeParts } from '../runtime.js';
import { leadingType, parseEvent } from './event-type.js';
import type { Outgoing, RelayEnding, RelayPolicy } from './socket-relay.js';
import { recordCutTurns, recordTurn, type SocketContext, type SocketTurn } from './socket-turns.js';

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A `response.create`'s output allowance (`response.max_output_tokens`), at least one token. */
function maxOutput(event: unknown): number {
  const response = isObject(event) && isObject(event.response) ? event.response : undefined;
  return typeof response?.max_output_tokens === 'number' && Number.isFinite(response.max_output_tokens) && response.max_output_tokens > 0 ? response.max_output_tokens : 1;
}

/** What a Realtime socket needs besides its relay. */
export interface RealtimeSocketOptions {
  readonly context: SocketContext;
  readonly parts: RuntimeParts;
  /** The session's model, from the handshake's `?model=` (aliases applied). */
  readonly model: string | undefined;
  readonly requestId: string;
  readonly send: (event: string) => void;
  /** Sends the upstream an event of the gateway's own. */
  readonly sendUpstream: (event: string) => void;
  /** Ends the session (a budget used up). */
  readonly close: (code: number, reason: string) => void;
  readonly idle: () => void;
}

/**
 * The Realtime API over WebSocket (https://platform.openai.com/docs/guides/realtime-websocket).
 * The model is checked at the handshake and on every `session.update` that names one. Each
 * response is a turn: admitted when the client asks for it (`response.create`) or, for a response
 * the server starts itself (voice activity), when it is created — and metered from its
 * `response.done` (text and audio tokens, priced apart). A key whose limits refuse a response gets
 * an `error` event; a key out of budget also has the session closed (1008), as the next response
 * could not be paid for.
 */
export class RealtimeSocket implements RelayPolicy {
  #model: string | undefined;
  /** Responses the client asked for, admitted, waiting for `response.created`. */
  #asked: SocketTurn[] = [];
  /** Responses under way, by id. */
  #running = new Map<string, SocketTurn>();
  #count = 0;
  #draining = false;

  constructor(private readonly options: RealtimeSocketOptions) {
    this.#model = options.model;
  }

  get busy(): boolean {
    return this.#running.size > 0 || this.#asked.length > 0;
  }

  drain(): void {
    this.#draining = true;
  }

  async fromClient(message: Buffer): Promise<Outgoing> {
    const { context } = this.options;
    const key = context.caller.key;
    const event = parseEvent(message);
    if (event === undefined) {
      this.#refuse(undefined, new GatewayError('invalid_json', 'Each message must be one JSON object (a client event with a "type").'));
      return undefined;
    }
    const eventId = typeof event.event_id === 'string' ? event.event_id : undefined;
    let rewritten = false;
    try {
      assertJsonDepth(event);
      if (event.type === 'session.update') rewritten = this.#checkSession(event);
      else if (event.type === 'response.create') {
        const turn = this.#turn(event);
        turn.ticket = await this.#admit(turn.model, event);
        this.#asked.push(turn);
      }
    } catch (error) {
      const failure = toGatewayError(error);
      this.#refuse(eventId, failure);
      if (failure.code === 'budget_exceeded' || failure.code === 'shutting_down') this.options.close(1008, failure.code === 'budget_exceeded' ? 'the key has used up its budget' : 'the gateway is shutting down');
      return undefined;
    }
    // An app key's events go upstream as the gateway parsed them: what was checked is what is sent.
    return key === undefined && !rewritten ? message : JSON.stringify(event);
  }

  fromUpstream(message: Buffer): void {
    let type = leadingType(message);
    let event: Json | undefined;
    if (type === undefined) {
      event = parseEvent(message);
      type = typeof event?.type === 'string' ? event.type : undefined;
    }
    if (type !== 'response.created' && type !== 'response.done' && type !== 'session.created' && type !== 'session.updated') return;
    event ??= parseEvent(message);
    const response = isObject(event?.response) ? event.response : undefined;
    const responseId = typeof response?.id === 'string' ? response.id : undefined;
    if (type === 'session.created' || type === 'session.updated') {
      const session = isObject(event?.session) ? event.session : undefined;
      if (typeof session?.model === 'string') this.#model = session.model;
      return;
    }
    if (responseId === undefined) return;
    if (type === 'response.created') {
      const asked = this.#asked.shift();
      if (asked !== undefined) {
        asked.responseId = responseId;
        this.#running.set(responseId, asked);
        return;
      }
      this.#serverStarted(responseId, event);
      return;
    }
    const turn = this.#running.get(responseId);
    if (turn === undefined) return;
    this.#running.delete(responseId);
    recordTurn(this.options.context, turn, { status: 200, usage: usageFromObject(event), errorCode: response?.status === 'failed' ? 'upstream_error' : undefined });
    if (!this.busy) this.options.idle();
  }

  ended(ending: RelayEnding): void {
    // The conversation's prompt lives upstream, unseen: a cut response is charged its output allowance.
    recordCutTurns(this.options.context, this.#running.values(), ending, (turn) => {
      const most = maxOutput(turn.body);
      return { promptTokens: 0, completionTokens: most, totalTokens: most, cachedTokens: 0, reasoningTokens: 0 };
    });
    // Asked for and never started: nothing was produced.
    for (const turn of this.#asked) turn.ticket?.refund();
    this.#running.clear();
    this.#asked = [];
  }

  /** A response the server started on its own (voice activity): admitted now, or cancelled. */
  #serverStarted(responseId: string, event: Json | undefined): void {
    const turn = this.#turn(event ?? {});
    turn.responseId = responseId;
    this.#running.set(responseId, turn);
    const refuse = (error: unknown): void => {
      this.#running.delete(responseId);
      const failure = toGatewayError(error);
      this.options.sendUpstream(JSON.stringify({ type: 'response.cancel', response_id: responseId }));
      this.#refuse(undefined, failure);
      if (failure.code === 'budget_exceeded') this.options.close(1008, 'the key has used up its budget');
    };
    try {
      const admitted = this.#admit(turn.model, {});
      if (admitted instanceof Promise) admitted.then((ticket) => (turn.ticket = ticket), refuse);
      else turn.ticket = admitted;
    } catch (error) {
      refuse(error);
    }
  }

  #turn(event: Json): SocketTurn {
    return { requestId: `${this.options.requestId}.${++this.#count}`, startedAt: performance.now(), model: this.#model, body: event, ticket: undefined, streamId: undefined, responseId: undefined };
  }

  /** A response's admission: the key's model, rpm and budgets; tpm counts its max_output_tokens until its usage comes. */
  #admit(model: string | undefined, event: Json): Ticket | Promise<Ticket> {
    if (this.#draining) throw new GatewayError('shutting_down', 'The gateway is shutting down; open a new session to continue.');
    const { parts, context } = this.options;
    const most = maxOutput(event);
    return parts.admission.admit(context.caller, model, () => ({ tokens: most, costUsd: parts.prices.cost(model, { promptTokens: 0, completionTokens: most, cachedTokens: 0 }) ?? 0 }));
  }

  /** A `session.update` naming a model: the same checks as the handshake's. Returns whether an alias was resolved in it. */
  #checkSession(event: Json): boolean {
    const session = isObject(event.session) ? event.session : undefined;
    const named = checkedModel(session?.model, 'session.model');
    if (named === undefined) return false;
    const model = resolveAlias(named, this.options.parts.config.modelAlias);
    this.options.parts.admission.check(this.options.context.caller, model);
    if (model === named) return false;
    session!.model = model;
    return true;
  }

  #refuse(eventId: string | undefined, error: GatewayError): void {
    // The Realtime `error` server event (https://platform.openai.com/docs/api-reference/realtime-server-events/error).
    this.options.send(JSON.stringify({ type: 'error', event_id: `event_gw_${this.#count}`, error: { type: error.type, code: error.code, message: error.message, param: error.param, event_id: eventId ?? null } }));
  }
}
