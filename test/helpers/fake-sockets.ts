import { randomBytes } from 'node:crypto';
import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { FakeObjects } from './fake-objects.js';

/**
 * The WebSocket half of the fake OpenAI upstream, on the fake's own port:
 * - Responses WebSocket mode on `GET /v1/responses`
 *   (https://developers.openai.com/api/reference/resources/responses/websocket-events): each
 *   `response.create` frame is answered with the same events as the SSE stream (built by
 *   `FakeObjects.responseEvents`, so `fake.objects.responseUsage` and `responseEnd` apply), as
 *   JSON text frames, one turn at a time per socket;
 * - Realtime on `GET /v1/realtime?model=…` (GA event names, as typed in
 *   node_modules/openai/resources/realtime/realtime.d.ts).
 * Any path ending in `/responses` or `/realtime` is served, so Azure-style prefixes work too.
 * A bad frame gets an `error` event and the socket stays open, as OpenAI does.
 *
 * Deliberate simplifications: `previous_response_id` only knows responses completed on the same
 * socket (the socket-local cache that works with `store: false`), usage is whatever
 * `fake.objects.responseUsage` / `realtimeUsage` say, and authentication is not checked (the account is
 * recorded for tests to compare).
 */

type Json = Record<string, unknown>;

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface RealtimeUsage {
  total_tokens: number;
  input_tokens: number;
  output_tokens: number;
  input_token_details: { text_tokens: number; audio_tokens: number; cached_tokens: number };
  output_token_details: { text_tokens: number; audio_tokens: number };
}

/** One upgrade request as the fake received it, accepted or not. */
export interface Handshake {
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The bearer token, Azure's `api-key`, or a browser's `openai-insecure-api-key.<key>` subprotocol. */
  readonly account: string;
  /** 101 when the socket was opened, else the status the fake answered. */
  readonly status: number;
  readonly receivedAt: number;
}

export interface ReceivedFrame {
  readonly text: string;
  /** The frame parsed, when it is a JSON object. */
  readonly json: Json | undefined;
  readonly binary: boolean;
  readonly at: number;
}

interface Refusal {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

interface RealtimeSession {
  session: Json;
  conversation: string;
  lastItem: string | null;
}

/** What the next turn (on any socket) does instead of finishing. */
type TurnFault = { kind: 'drop'; afterDeltas: number; code: number | undefined; reason: string } | { kind: 'hang' };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const newId = (prefix: string): string => `${prefix}${randomBytes(12).toString('hex')}`;
const words = (text: string): string[] => text.match(/\s*\S+\s*/g) ?? [text];

async function until<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`fake sockets: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** One accepted WebSocket: its handshake, every frame it received and every event it sent. */
export class FakeSocketConnection {
  readonly received: ReceivedFrame[] = [];
  readonly sent: Json[] = [];
  /** When each pong arrived. */
  readonly pongs: number[] = [];
  /**
   * Resolves once the socket is closed, by either side, with the code as `ws` reports it: the
   * client's close frame, or 1006 when it left without one (Codex does, even after the fake's close frame).
   */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Responses completed on this socket, which a later `previous_response_id` may name. */
  readonly responseIds = new Set<string>();

  constructor(
    readonly kind: 'responses' | 'realtime',
    readonly handshake: Handshake,
    readonly socket: WebSocket,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })));
    socket.on('pong', () => this.pongs.push(Date.now()));
  }

  get account(): string {
    return this.handshake.account;
  }

  get open(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  /** The received frames that are JSON events of this type. */
  events(type: string): Json[] {
    return this.received.flatMap((frame) => (frame.json?.type === type ? [frame.json] : []));
  }

  /** The first received frame that matches, waiting for it. */
  waitForFrame(match: (frame: ReceivedFrame) => boolean, timeoutMs = 5_000): Promise<ReceivedFrame> {
    return until(() => this.received.find(match), timeoutMs, 'a matching frame');
  }

  send(event: Json): void {
    if (!this.open) return;
    this.sent.push(event);
    this.socket.send(JSON.stringify(event));
  }

  /** Pings the client; resolves with the time its pong arrived. */
  async ping(timeoutMs = 5_000): Promise<number> {
    const before = this.pongs.length;
    this.socket.ping();
    return until(() => this.pongs[before], timeoutMs, 'a pong');
  }

  /** A clean close with this code (1000, 1001, 1011, 4xxx…). */
  close(code = 1000, reason = ''): void {
    this.socket.close(code, reason);
  }

  /** Drops the TCP connection with no close frame (the client sees 1006). */
  terminate(): void {
    this.socket.terminate();
  }
}

/**
 * WebSocket endpoints attached to a FakeUpstream's HTTP server (`FakeUpstream.start({ websockets: true })`).
 * Records every handshake and frame, answers like OpenAI, and misbehaves on demand.
 */
export class FakeSockets {
  /** Every upgrade request, refused ones included. */
  readonly handshakes: Handshake[] = [];
  /** Every accepted socket, oldest first. */
  readonly connections: FakeSocketConnection[] = [];
  /** Models a `response.create` or a Realtime session may name; others get `model_not_found`. */
  readonly models = new Set(['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-5', 'gpt-5-mini', 'gpt-5-codex', 'gpt-5.1-codex', 'gpt-realtime', 'gpt-realtime-mini', 'gpt-4o-realtime-preview', 'gpt-4o-mini-realtime-preview']);
  /** The usage a Realtime turn reports in `response.done`. */
  realtimeUsage: RealtimeUsage = { total_tokens: 95, input_tokens: 60, output_tokens: 35, input_token_details: { text_tokens: 20, audio_tokens: 40, cached_tokens: 16 }, output_token_details: { text_tokens: 10, audio_tokens: 25 } };
  /** Pause before every frame of a turn after its first. */
  delayMs = 0;
  private readonly server = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: (protocols) => (protocols.has('realtime') ? 'realtime' : ([...protocols][0] ?? false)) });
  private readonly refusals: Refusal[] = [];
  private readonly live = new Set<FakeSocketConnection>();
  private readonly sessions = new WeakMap<FakeSocketConnection, RealtimeSession>();
  /** Each socket's turns run one after another, as the API runs them. */
  private readonly turns = new WeakMap<FakeSocketConnection, Promise<void>>();
  private readonly faults: TurnFault[] = [];

  constructor(
    httpServer: Server,
    private readonly objects: FakeObjects,
    private readonly replyText: () => string,
  ) {
    httpServer.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(request, socket, head));
  }

  /** Sockets open now (`reset()` does not forget them). */
  get open(): number {
    return this.live.size;
  }

  /** Answers the next `times` upgrade requests with this status (and an OpenAI error body) instead of a socket. */
  refuseNext(status: number, options: { body?: unknown; headers?: Record<string, string>; times?: number } = {}): this {
    const body = options.body ?? openAiError(`Refused by the fake upstream with ${status}.`);
    for (let i = 0; i < (options.times ?? 1); i++) this.refusals.push({ status, body, headers: options.headers ?? {} });
    return this;
  }

  /**
   * The next turn (not counting Codex's `generate: false` warm-ups) stops after `afterDeltas` text deltas (before its final event at the latest):
   * closed with `close.code` when given, else the TCP connection is dropped with no close frame.
   */
  dropNextTurn(afterDeltas: number, close?: { code: number; reason?: string }): this {
    this.faults.push({ kind: 'drop', afterDeltas, code: close?.code, reason: close?.reason ?? '' });
    return this;
  }

  /** The next turn (not counting warm-ups) gets no answer at all; the socket stays open and later turns are answered. */
  hangNextTurn(): this {
    this.faults.push({ kind: 'hang' });
    return this;
  }

  /** The `index`-th accepted socket (0-based), waiting for it to open. */
  connection(index: number, timeoutMs = 5_000): Promise<FakeSocketConnection> {
    return until(() => this.connections[index], timeoutMs, `socket #${index}`);
  }

  /** Resolves once no socket is open (rejects after `timeoutMs`). */
  async allClosed(timeoutMs = 5_000): Promise<void> {
    await until(() => (this.open === 0 ? true : undefined), timeoutMs, `${this.open} open socket(s) to close`);
  }

  /** Forgets handshakes, connections and pending misbehaviour; settings (usage, delay, models) stay. */
  reset(): void {
    this.handshakes.length = 0;
    this.connections.length = 0;
    this.refusals.length = 0;
    this.faults.length = 0;
  }

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'http://fake.invalid');
    const kind = url.pathname.endsWith('/responses') ? 'responses' : url.pathname.endsWith('/realtime') ? 'realtime' : undefined;
    const record = (status: number): Handshake => {
      const handshake = { path: url.pathname, query: url.searchParams, headers: request.headers, account: accountOf(request.headers), status, receivedAt: Date.now() };
      this.handshakes.push(handshake);
      return handshake;
    };
    if (kind === undefined) return refuse(socket, record, { status: 404, body: openAiError(`No WebSocket endpoint at ${url.pathname}.`), headers: {} });
    const refusal = this.refusals.shift();
    if (refusal) return refuse(socket, record, refusal);
    this.server.handleUpgrade(request, socket, head, (ws) => {
      const connection = new FakeSocketConnection(kind, record(101), ws);
      this.connections.push(connection);
      this.live.add(connection);
      void connection.closed.then(() => this.live.delete(connection));
      ws.on('message', (data: RawData, binary: boolean) => this.onFrame(connection, data, binary));
      // A client that vanishes mid-send makes `ws` emit an error; the close event records it.
      ws.on('error', () => undefined);
      if (kind === 'realtime') this.startRealtime(connection);
    });
  }

  private onFrame(connection: FakeSocketConnection, data: RawData, binary: boolean): void {
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
    const json = binary ? undefined : parseObject(text);
    connection.received.push({ text, json, binary, at: Date.now() });
    const error = (code: string, message: string, param: string | null = null): void => connection.send(errorEvent(connection.kind, code, message, param, json));
    if (!json) return error('invalid_json', binary ? 'Binary frames are not supported; send JSON text frames.' : 'The frame is not a JSON object.');
    if (connection.kind === 'responses') {
      if (json.type !== 'response.create') return error('invalid_value', `Invalid value: '${String(json.type)}'. Supported values are: 'response.create'.`, 'type');
      this.enqueue(connection, () => this.responsesTurn(connection, json));
      return;
    }
    this.realtimeEvent(connection, json, error);
  }

  private async responsesTurn(connection: FakeSocketConnection, frame: Json): Promise<void> {
    const { type: _type, generate, ...body } = frame;
    const previous = body.previous_response_id;
    const fail = (code: string, message: string, param: string): void => connection.send(errorEvent('responses', code, message, param, frame));
    if (typeof previous === 'string' && !connection.responseIds.has(previous)) return fail('previous_response_not_found', `Previous response with id '${previous}' not found.`, 'previous_response_id');
    if (body.background === true) return fail('invalid_value', 'Background responses are not supported over WebSocket.', 'background');
    if (typeof body.model !== 'string') return fail('missing_required_parameter', "Missing required parameter: 'model'.", 'model');
    if (!this.models.has(body.model)) return fail('model_not_found', `The model \`${body.model}\` does not exist or you do not have access to it.`, 'model');
    const id = newId('resp_');
    let events: Json[];
    if (generate === false) {
      // Codex's warm-up: a response id to chain to, nothing generated, nothing billed.
      const zero: ResponsesUsage = { input_tokens: 0, input_tokens_details: { cached_tokens: 0 }, output_tokens: 0, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 0 };
      const full = { ...this.objects.responseObject(id, body), output: [], usage: zero };
      events = [{ type: 'response.created', response: { ...full, status: 'in_progress', completed_at: null, usage: null } }, { type: 'response.completed', response: full }].map((event, index) => ({ ...event, sequence_number: index }));
    } else {
      events = this.objects.responseEvents(this.objects.responseObject(id, body));
    }
    if (await this.play(connection, events, 'response.output_text.delta', generate !== false)) connection.responseIds.add(id);
  }

  private startRealtime(connection: FakeSocketConnection): void {
    const model = connection.handshake.query.get('model') ?? '';
    if (!this.models.has(model)) {
      connection.send(errorEvent('realtime', 'model_not_found', `The model '${model}' does not exist or you do not have access to it.`, 'model', undefined));
      connection.close(1008, 'model_not_found');
      return;
    }
    const session = { type: 'realtime', object: 'realtime.session', id: newId('sess_'), model, output_modalities: ['audio'], instructions: '', tools: [], tool_choice: 'auto', max_output_tokens: 'inf', tracing: null, truncation: 'auto', prompt: null, expires_at: Math.floor(Date.now() / 1000) + 3600, audio: { input: { format: { type: 'audio/pcm', rate: 24000 }, turn_detection: { type: 'server_vad' } }, output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy', speed: 1 } }, include: null };
    this.sessions.set(connection, { session, conversation: newId('conv_'), lastItem: null });
    connection.send({ type: 'session.created', event_id: newId('event_'), session });
  }

  private realtimeEvent(connection: FakeSocketConnection, event: Json, error: (code: string, message: string, param?: string | null) => void): void {
    const state = this.sessions.get(connection);
    if (!state) return;
    switch (event.type) {
      case 'session.update':
        Object.assign(state.session, isObject(event.session) ? event.session : {});
        return connection.send({ type: 'session.updated', event_id: newId('event_'), session: state.session });
      case 'conversation.item.create': {
        const item = { ...(isObject(event.item) ? event.item : {}), object: 'realtime.item', status: 'completed' } as Json;
        item.id ??= newId('item_');
        connection.send({ type: 'conversation.item.created', event_id: newId('event_'), previous_item_id: state.lastItem, item });
        state.lastItem = String(item.id);
        return;
      }
      case 'response.create':
        return this.enqueue(connection, () => this.realtimeTurn(connection, state, isObject(event.response) ? event.response : {}));
      case 'input_audio_buffer.append':
      case 'input_audio_buffer.clear':
      case 'output_audio_buffer.clear':
      case 'response.cancel':
        return;
      default:
        return error('invalid_value', `Invalid value: '${String(event.type)}'. Supported values are: 'session.update', 'input_audio_buffer.append', 'conversation.item.create', 'response.create' and others.`, 'type');
    }
  }

  private async realtimeTurn(connection: FakeSocketConnection, state: RealtimeSession, options: Json): Promise<void> {
    const text = this.replyText();
    const modalities = Array.isArray(options.output_modalities) ? options.output_modalities : (state.session.output_modalities as unknown[]);
    const audio = !modalities.includes('text');
    const responseId = newId('resp_');
    const itemId = newId('item_');
    const at = { response_id: responseId, item_id: itemId, output_index: 0, content_index: 0 };
    const part = audio ? { type: 'audio', transcript: '' } : { type: 'text', text: '' };
    const donePart = audio ? { type: 'audio', transcript: text } : { type: 'text', text };
    const item = { id: itemId, object: 'realtime.item', type: 'message', role: 'assistant', status: 'completed', content: [audio ? { type: 'output_audio', transcript: text } : { type: 'output_text', text }] };
    const response = { object: 'realtime.response', id: responseId, conversation_id: state.conversation, output_modalities: audio ? ['audio'] : ['text'], max_output_tokens: 'inf', metadata: options.metadata ?? null, audio: { output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy' } } };
    const kind = audio ? 'response.output_audio_transcript' : 'response.output_text';
    const events: Json[] = [
      { type: 'response.created', response: { ...response, status: 'in_progress', status_details: null, output: [], usage: null } },
      { type: 'response.output_item.added', response_id: responseId, output_index: 0, item: { ...item, status: 'in_progress', content: [] } },
      { type: 'response.content_part.added', ...at, part },
      ...words(text).map((delta) => ({ type: `${kind}.delta`, ...at, delta })),
      { type: `${kind}.done`, ...at, ...(audio ? { transcript: text } : { text }) },
      { type: 'response.content_part.done', ...at, part: donePart },
      { type: 'response.output_item.done', response_id: responseId, output_index: 0, item },
      { type: 'response.done', response: { ...response, status: 'completed', status_details: null, output: [item], usage: this.realtimeUsage } },
    ];
    await this.play(connection, events.map((event) => ({ event_id: newId('event_'), ...event })), `${kind}.delta`);
  }

  private enqueue(connection: FakeSocketConnection, turn: () => Promise<void>): void {
    this.turns.set(connection, (this.turns.get(connection) ?? Promise.resolve()).then(turn));
  }

  /** Sends a turn's events, applying the next fault unless it is a warm-up; true when the turn was sent whole. */
  private async play(connection: FakeSocketConnection, events: readonly Json[], deltaType: string, faultable = true): Promise<boolean> {
    const fault = faultable ? this.faults.shift() : undefined;
    if (fault?.kind === 'hang') return false;
    let deltas = 0;
    for (const [index, event] of events.entries()) {
      if (!connection.open) return false;
      const last = index === events.length - 1;
      if (fault?.kind === 'drop' && ((event.type === deltaType && deltas === fault.afterDeltas) || last)) {
        if (fault.code === undefined) connection.terminate();
        else connection.close(fault.code, fault.reason);
        return false;
      }
      if (index > 0 && this.delayMs > 0) await sleep(this.delayMs);
      connection.send(event);
      if (event.type === deltaType) deltas += 1;
    }
    return connection.open;
  }
}

/** OpenAI's error event: Responses WebSocket mode adds the HTTP status, Realtime an event id and the client event's id. */
function errorEvent(kind: 'responses' | 'realtime', code: string, message: string, param: string | null, cause: Json | undefined): Json {
  const error = { type: 'invalid_request_error', code, message, param };
  if (kind === 'responses') return { type: 'error', status: 400, error };
  return { type: 'error', event_id: newId('event_'), error: { ...error, event_id: typeof cause?.event_id === 'string' ? cause.event_id : null } };
}

/** Answers an upgrade request with a plain HTTP response instead of a socket. */
function refuse(socket: Duplex, record: (status: number) => Handshake, { status, body, headers }: Refusal): void {
  record(status);
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Refused'}`, 'content-type: application/json', `content-length: ${Buffer.byteLength(text)}`, 'connection: close', ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
}

function openAiError(message: string): Json {
  return { error: { message, type: 'invalid_request_error', param: null, code: null } };
}

function accountOf(headers: IncomingHttpHeaders): string {
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && /^bearer /i.test(authorization)) return authorization.slice(7).trim();
  if (typeof headers['api-key'] === 'string') return headers['api-key'];
  const protocols = String(headers['sec-websocket-protocol'] ?? '').split(',').map((protocol) => protocol.trim());
  return protocols.find((protocol) => protocol.startsWith('openai-insecure-api-key.'))?.slice('openai-insecure-api-key.'.length) ?? '';
}

function parseObject(text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
