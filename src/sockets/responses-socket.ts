import { performance } from 'node:perf_hooks';
import { GatewayError, toGatewayError, upstreamStatusCode } from '../errors/index.js';
import { assertJsonDepth } from '../http/json-depth.js';
import { abortedEstimate } from '../metering/estimate-usage.js';
import { ownerIdOf, type Ownership } from '../ownership/ownership.js';
import { objectReferences } from '../ownership/references.js';
import { keyPolicyOf, prepareV1Body } from '../policy/v1-body.js';
import { checkedModel } from '../policy/model-name.js';
import { usageFromObject } from '../streaming/usage.js';
import type { RuntimeParts } from '../runtime.js';
import type { SocketTarget } from '../upstream/pool.js';
import { leadingType, parseEvent } from './event-type.js';
import type { Outgoing, RelayEnding, RelayPolicy } from './socket-relay.js';
import { recordCutTurns, recordTurn, type SocketContext, type SocketTurn, type TurnOutcome } from './socket-turns.js';

type Json = Record<string, unknown>;

/** Terminal events of a response: each carries the response with its usage. */
const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed', 'response.cancelled']);
/** Upstream events the relay reads; every other one passes unread. */
const READ = new Set(['response.created', 'error', ...TERMINAL]);

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);

/** What a Responses socket needs besides its relay. */
export interface ResponsesSocketOptions {
  readonly context: SocketContext;
  readonly parts: RuntimeParts;
  readonly ownership: Ownership;
  readonly target: SocketTarget;
  /** The handshake's request id; turns are `<id>.1`, `<id>.2`, … */
  readonly requestId: string;
  /** Sends the client an event of the gateway's own. */
  readonly send: (event: string) => void;
  /** A turn ended; the socket may close if it was draining. */
  readonly idle: () => void;
}

/**
 * The Responses API's WebSocket mode (https://platform.openai.com/docs/guides/websocket-mode):
 * each `response.create` is a turn, checked and admitted like `POST /v1/responses` (model list,
 * persona, defaults and ceiling through the same body policy, objects it names must be the
 * caller's, rpm/tpm/budgets) and metered from its own terminal event. A refused turn is answered
 * with an `error` event and the socket stays open. Other client events (`response.steer`…) pass;
 * an app key's events go upstream as the gateway parsed them, so no event means one thing here and
 * another there.
 */
export class ResponsesSocket implements RelayPolicy {
  #turns: SocketTurn[] = [];
  #count = 0;
  #draining = false;

  constructor(private readonly options: ResponsesSocketOptions) {}

  /** Turns sent and not finished. */
  get busy(): boolean {
    return this.#turns.length > 0;
  }

  /** Shutdown: no new turns; the ones running finish. */
  drain(): void {
    this.#draining = true;
  }

  async fromClient(message: Buffer): Promise<Outgoing> {
    const { context, parts } = this.options;
    const caller = context.caller;
    const key = caller.key;
    const event = parseEvent(message);
    if (event === undefined) {
      this.#refuse(undefined, new GatewayError('invalid_json', 'Each message must be one JSON object (an event with a "type").'));
      return undefined;
    }
    const streamId = typeof event.stream_id === 'string' ? event.stream_id : undefined;
    try {
      assertJsonDepth(event);
    } catch (error) {
      this.#refuse(streamId, toGatewayError(error));
      return undefined;
    }
    if (event.type !== 'response.create') return key === undefined ? message : JSON.stringify(event);
    const requestId = `${this.options.requestId}.${++this.#count}`;
    const startedAt = performance.now();
    let model: string | undefined;
    try {
      if (this.#draining) throw new GatewayError('shutting_down', 'The gateway is shutting down; open a new connection to continue.');
      checkedModel(event.model);
      const prepared = prepareV1Body('responses', message, event, {
        modelAlias: parts.config.modelAlias,
        defaults: parts.config.v1Defaults ? parts.config.defaults : undefined,
        key: keyPolicyOf(key),
        includeUsage: () => false,
      });
      model = checkedModel(prepared.model);
      if (model === undefined && key?.models !== undefined) throw new GatewayError('invalid_request', `"model" is required: key "${key.name}" may use only some models.`, { param: 'model' });
      if (model !== undefined && !parts.upstreams.upstreamServes(this.options.target.upstream, model)) {
        throw new GatewayError('model_not_found', `The model \`${model.slice(0, 200)}\` is not served by upstream "${this.options.target.upstream}", which this WebSocket is connected to; use HTTP or a new connection for it.`, { param: 'model' });
      }
      await this.#checkReferences(event);
      const admitted = parts.admission.admitPrompt(caller, model, 'responses', event);
      const ticket = admitted instanceof Promise ? await admitted : admitted;
      this.#turns.push({ requestId, startedAt, model, body: event, ticket, streamId, responseId: undefined });
      // What was checked is what goes: an app key's event as parsed, anyone's as the policy changed it.
      return key !== undefined && prepared.body === message ? JSON.stringify(event) : prepared.body;
    } catch (error) {
      const failure = toGatewayError(error);
      recordTurn(context, { requestId, startedAt, model, body: event, ticket: undefined, streamId, responseId: undefined }, { status: failure.status, usage: undefined, errorCode: failure.code });
      this.#refuse(streamId, failure);
      return undefined;
    }
  }

  fromUpstream(message: Buffer): void {
    let type = leadingType(message);
    let event: Json | undefined;
    if (type === undefined) {
      event = parseEvent(message);
      type = typeof event?.type === 'string' ? event.type : undefined;
    }
    if (type === undefined || !READ.has(type)) return;
    event ??= parseEvent(message);
    if (event === undefined) return;
    const response = isObject(event.response) ? event.response : undefined;
    const responseId = typeof response?.id === 'string' ? response.id : undefined;
    const streamId = typeof event.stream_id === 'string' ? event.stream_id : undefined;
    if (type === 'response.created') {
      if (responseId === undefined) return;
      let turn = this.#turns.find((candidate) => candidate.responseId === undefined && candidate.streamId === streamId);
      if (turn === undefined) {
        // A response no pending turn asked for (its turn was taken for failed by an unrelated error event): metered all the same.
        turn = { requestId: `${this.options.requestId}.${++this.#count}`, startedAt: performance.now(), model: typeof response?.model === 'string' ? response.model : undefined, body: {}, ticket: undefined, streamId, responseId: undefined };
        this.#turns.push(turn);
      }
      turn.responseId = responseId;
      const { caller } = this.options.context;
      const { target } = this.options;
      // Recorded for every caller: a later turn (or an HTTP retrieve) naming it must be the caller's, and goes to this account.
      void this.options.ownership.record([{ id: responseId, kind: 'response', keyId: ownerIdOf(caller), upstream: target.upstream, upstreamKey: target.upstreamKey, createdAt: new Date() }]);
      return;
    }
    if (type === 'error') {
      // An error before a response was created refuses that turn (a bad field, an unknown previous response).
      const index = this.#turns.findIndex((candidate) => candidate.responseId === undefined && candidate.streamId === streamId);
      if (index === -1) return;
      const status = typeof event.status === 'number' && event.status >= 400 && event.status < 600 ? event.status : 400;
      this.#finish(index, { status, usage: undefined, errorCode: upstreamStatusCode(status) });
      return;
    }
    // A terminal event: the turn it ends is metered from its usage.
    let index = responseId === undefined ? -1 : this.#turns.findIndex((candidate) => candidate.responseId === responseId);
    if (index === -1) index = this.#turns.findIndex((candidate) => candidate.streamId === streamId);
    if (index === -1) return;
    this.#finish(index, { status: 200, usage: usageFromObject(event), errorCode: type === 'response.failed' ? 'upstream_error' : undefined });
  }

  ended(ending: RelayEnding): void {
    recordCutTurns(this.options.context, this.#turns, ending, (turn) => abortedEstimate('responses', turn.body, turn.model));
    this.#turns = [];
  }

  #finish(index: number, outcome: TurnOutcome): void {
    const [turn] = this.#turns.splice(index, 1);
    recordTurn(this.options.context, turn!, outcome);
    if (this.#turns.length === 0) this.options.idle();
  }

  /** Every object the event names must be the caller's; a response it continues must live on this socket's upstream account. */
  async #checkReferences(event: Json): Promise<void> {
    const { context, ownership, target } = this.options;
    const caller = context.caller;
    const references = caller.key !== undefined ? objectReferences(event) : typeof event.previous_response_id === 'string' ? [{ kind: 'response' as const, id: event.previous_response_id }] : [];
    for (const reference of references) {
      const found = await ownership.authorize(caller, reference.kind, reference.id);
      if (reference.kind === 'response' && found !== undefined && (found.upstream !== target.upstream || found.upstreamKey !== target.upstreamKey)) {
        throw new GatewayError('object_not_found', `Response ${reference.id.slice(0, 128)} is held by another upstream account than this WebSocket's; continue it over HTTP, where the gateway routes it to its account.`, { param: 'previous_response_id' });
      }
    }
  }

  #refuse(streamId: string | undefined, error: GatewayError): void {
    // The shape of the Responses WebSocket `error` event (openai-node ResponsesServerEvent.ResponseWsError).
    const event: Json = { type: 'error', status: error.status, error: { type: error.type, code: error.code, message: error.message, param: error.param } };
    if (streamId !== undefined) event.stream_id = streamId;
    this.options.send(JSON.stringify(event));
  }
}
