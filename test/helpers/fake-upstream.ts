import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { FakeObjects } from './fake-objects.js';
import { FakeSockets } from './fake-sockets.js';

/** One request as the fake OpenAI server received it. */
export interface RecordedRequest {
  method: string;
  url: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** The body parsed as JSON, when it is JSON. */
  json: Record<string, unknown> | undefined;
  receivedAt: number;
  /** Resolves when the client side of this request's connection is closed or the request aborted. */
  closed: Promise<number>;
}

export type Handler = (request: RecordedRequest, response: ServerResponse, socket: Socket) => void | Promise<void>;

export interface SseOptions {
  delayMs?: number;
  /** Delay before the first event, e.g. a slow first token. */
  firstDelayMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function chatCompletion(model: string, content: string, usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }, id = 'chatcmpl-fake1'): Record<string, unknown> {
  return {
    id,
    object: 'chat.completion',
    created: 1741570283,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { ...usage, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
  };
}

/** The chunks OpenAI streams for `content`, split into words, with the usage chunk when asked for. */
export function chatStreamEvents(model: string, content: string, includeUsage: boolean, usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }, id = 'chatcmpl-fake1'): string[] {
  const base = { id, object: 'chat.completion.chunk', created: 1741570283, model };
  const extra = includeUsage ? { usage: null } : {};
  const events = [JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], ...extra })];
  for (const piece of content.match(/\S+\s*/g) ?? []) {
    events.push(JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }], ...extra }));
  }
  events.push(JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], ...extra }));
  if (includeUsage) events.push(JSON.stringify({ ...base, choices: [], usage }));
  events.push('[DONE]');
  return events;
}

/** A function call the fake chat handler answers with (`FakeUpstream.replyToolCalls`); `arguments` is the JSON string. */
export interface FakeToolCall {
  name: string;
  arguments: string;
}

const toolCallId = (index: number): string => `call_fake${index + 1}`;

/** A chat completion whose answer is tool calls (`finish_reason: "tool_calls"`, no content). */
export function chatToolCallCompletion(model: string, calls: readonly FakeToolCall[], usage = { prompt_tokens: 40, completion_tokens: 18, total_tokens: 58 }): Record<string, unknown> {
  const toolCalls = calls.map((call, index) => ({ id: toolCallId(index), type: 'function', function: { name: call.name, arguments: call.arguments } }));
  const completion = chatCompletion(model, '', usage);
  completion.choices = [{ index: 0, message: { role: 'assistant', content: null, tool_calls: toolCalls, refusal: null }, logprobs: null, finish_reason: 'tool_calls' }];
  return completion;
}

/**
 * The chunks OpenAI streams for tool calls: each call opens with its id, name and empty
 * arguments, then its arguments come in three pieces; `finish_reason: "tool_calls"` last.
 */
export function chatToolCallStreamEvents(model: string, calls: readonly FakeToolCall[], includeUsage: boolean, usage = { prompt_tokens: 40, completion_tokens: 18, total_tokens: 58 }): string[] {
  const base = { id: 'chatcmpl-fake1', object: 'chat.completion.chunk', created: 1741570283, model };
  const extra = includeUsage ? { usage: null } : {};
  const chunk = (delta: Record<string, unknown>, finish: string | null = null): string => JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra });
  const events: string[] = [];
  calls.forEach((call, index) => {
    const opening = { index, id: toolCallId(index), type: 'function', function: { name: call.name, arguments: '' } };
    events.push(chunk(index === 0 ? { role: 'assistant', content: null, tool_calls: [opening] } : { tool_calls: [opening] }));
    const third = Math.max(1, Math.ceil(call.arguments.length / 3));
    for (let at = 0; at < call.arguments.length; at += third) events.push(chunk({ tool_calls: [{ index, function: { arguments: call.arguments.slice(at, at + third) } }] }));
  });
  events.push(chunk({}, 'tool_calls'));
  if (includeUsage) events.push(JSON.stringify({ ...base, choices: [], usage }));
  events.push('[DONE]');
  return events;
}

export function completionStreamEvents(model: string, content: string, includeUsage: boolean): string[] {
  const base = { id: 'cmpl-fake1', object: 'text_completion', created: 1741570283, model };
  const events = (content.match(/\S+\s*/g) ?? []).map((piece) => JSON.stringify({ ...base, choices: [{ text: piece, index: 0, logprobs: null, finish_reason: null }] }));
  if (includeUsage) events.push(JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } }));
  events.push('[DONE]');
  return events;
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

export async function sendSse(response: ServerResponse, events: readonly string[], options: SseOptions = {}, headers: Record<string, string> = {}): Promise<void> {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers });
  response.flushHeaders();
  if (options.firstDelayMs) await sleep(options.firstDelayMs);
  for (const [index, data] of events.entries()) {
    if (response.destroyed) return;
    if (index > 0 && options.delayMs) await sleep(options.delayMs);
    response.write(`data: ${data}\n\n`);
  }
  response.end();
}

/** A Realtime WebRTC call as the fake received it (`POST /v1/realtime/calls`), parsed by undici's own form reader. */
export interface RecordedCall {
  contentType: string;
  sdp: string;
  /** The `session` field parsed, when the body was a form with one. */
  session: Record<string, unknown> | undefined;
  /** Every field name of the form, in order (none for a raw SDP body). */
  fields: string[];
  /** The `Location` the fake answered with. */
  location: string;
}

export const FAKE_SDP_ANSWER = 'v=0\r\no=- 4227147428 1719357865 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n';

export function openAiError(status: number, message: string, type: string, code: string | null): Record<string, unknown> {
  return { error: { message, type, param: null, code } };
}

/**
 * A real HTTP server on 127.0.0.1 playing OpenAI. It records every request, answers like the
 * API by default (chat, completions, embeddings, models, transcriptions, and through `objects`
 * files, batches, responses, vector stores and stored chat completions, per account), and can be
 * scripted to answer anything else: errors, slowness, hangs, resets.
 */
export class FakeUpstream {
  readonly requests: RecordedRequest[] = [];
  /** Realtime calls created, in order (`reset()` clears them). */
  readonly calls: RecordedCall[] = [];
  /** What the default chat handler answers. */
  replyText = 'Hello from the fake upstream.';
  /** When set, the default chat handler answers with these tool calls instead of text (streamed or not); `reset()` clears it. */
  replyToolCalls: FakeToolCall[] | undefined;
  /** Stateful objects per account (upstream key). `reset()` keeps them: call `objects.reset()` to clear. */
  readonly objects = new FakeObjects(() => this.replyText);
  private readonly scripted: Array<{ handler: Handler; remaining: number }> = [];
  private fakeSockets: FakeSockets | undefined;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private port = 0;

  /**
   * `websockets: true` serves Responses WebSocket mode and Realtime (see `websockets`); without
   * it an upgrade request is answered as a plain HTTP request, like a provider with no WebSockets.
   */
  static async start(options: { websockets?: boolean } = {}): Promise<FakeUpstream> {
    const fake = new FakeUpstream();
    await fake.listen();
    if (options.websockets) fake.fakeSockets = new FakeSockets(fake.server!, fake.objects, () => fake.replyText);
    return fake;
  }

  /** The WebSocket endpoints, when started with `{ websockets: true }`. */
  get websockets(): FakeSockets {
    if (!this.fakeSockets) throw new Error('this fake upstream has no WebSockets: start it with FakeUpstream.start({ websockets: true })');
    return this.fakeSockets;
  }

  /** Base URL as a gateway would be configured with it: `http://127.0.0.1:PORT/v1`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Sockets currently open to this server. */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** The next `times` requests are answered by `handler` instead of the defaults. */
  script(handler: Handler, times = 1): this {
    this.scripted.push({ handler, remaining: times });
    return this;
  }

  /** Answer the next request(s) with this status and body. */
  failWith(status: number, body: unknown, headers: Record<string, string> = {}, times = 1): this {
    return this.script((_request, response) => sendJson(response, status, body, headers), times);
  }

  last(): RecordedRequest {
    const request = this.requests.at(-1);
    if (!request) throw new Error('the fake upstream has received no request');
    return request;
  }

  reset(): void {
    this.requests.length = 0;
    this.calls.length = 0;
    this.scripted.length = 0;
    this.replyToolCalls = undefined;
    this.fakeSockets?.reset();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async listen(): Promise<void> {
    this.server = createServer((request, response) => void this.onRequest(request, response));
    this.server.on('connection', (socket) => {
      // Every request on a keep-alive socket adds a close listener (see onRequest); many is normal.
      socket.setMaxListeners(0);
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private async onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const socket = request.socket;
    const closed = new Promise<number>((resolve) => {
      const done = (): void => resolve(Date.now());
      socket.once('close', done);
      response.once('close', () => {
        if (!response.writableFinished) done();
      });
    });
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of request) chunks.push(chunk as Buffer);
    } catch {
      return;
    }
    const body = Buffer.concat(chunks);
    let json: Record<string, unknown> | undefined;
    if ((request.headers['content-type'] ?? '').includes('json') && body.length > 0) {
      try {
        json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
    }
    const url = request.url ?? '/';
    const recorded: RecordedRequest = { method: request.method ?? 'GET', url, path: url.split('?')[0]!, headers: request.headers, body, json, receivedAt: Date.now(), closed };
    this.requests.push(recorded);
    const script = this.scripted[0];
    if (script) {
      script.remaining -= 1;
      if (script.remaining <= 0) this.scripted.shift();
      await script.handler(recorded, response, socket);
      return;
    }
    await this.answerByDefault(recorded, response);
  }

  /** Like OpenAI: a form with `sdp` and an optional JSON `session`, or a raw SDP offer; 201 with the answer and the call's Location. */
  private async answerCall(request: RecordedRequest, response: ServerResponse, headers: Record<string, string>): Promise<void> {
    const contentType = String(request.headers['content-type'] ?? '');
    let call: Omit<RecordedCall, 'location'>;
    try {
      if (contentType.startsWith('application/sdp')) {
        call = { contentType, sdp: request.body.toString('utf8'), session: undefined, fields: [] };
      } else {
        const form = await new Response(request.body, { headers: { 'content-type': contentType } }).formData();
        const sdp = form.get('sdp');
        const session = form.get('session');
        if (typeof sdp !== 'string' || (session !== null && typeof session !== 'string')) throw new Error('"sdp" and "session" must be fields');
        call = { contentType, sdp, session: session === null ? undefined : (JSON.parse(session) as Record<string, unknown>), fields: [...form.keys()] };
      }
    } catch (error) {
      return sendJson(response, 400, openAiError(400, `Invalid call: ${(error as Error).message}`, 'invalid_request_error', null), headers);
    }
    const location = `/v1/realtime/calls/rtc_${randomBytes(12).toString('hex')}`;
    this.calls.push({ ...call, location });
    response.writeHead(201, { 'content-type': 'application/sdp', 'content-length': Buffer.byteLength(FAKE_SDP_ANSWER), location, ...headers });
    response.end(FAKE_SDP_ANSWER);
  }

  private async answerByDefault(request: RecordedRequest, response: ServerResponse): Promise<void> {
    const body = request.json ?? {};
    const model = typeof body.model === 'string' ? body.model : 'gpt-4o-mini';
    const stream = body.stream === true;
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const headers = { 'x-request-id': `req_fake_${this.requests.length}`, 'openai-processing-ms': '42', 'x-ratelimit-remaining-requests': '99' };
    switch (`${request.method} ${request.path}`) {
      case 'POST /v1/chat/completions': {
        if (this.replyToolCalls !== undefined) {
          if (stream) return sendSse(response, chatToolCallStreamEvents(model, this.replyToolCalls, includeUsage), {}, headers);
          return sendJson(response, 200, chatToolCallCompletion(model, this.replyToolCalls), headers);
        }
        // A stored completion gets its own id so it can be fetched back; others keep the fixed id tests compare with.
        const id = body.store === true ? this.objects.keepChatCompletion(request, chatCompletion(model, this.replyText)) : undefined;
        if (stream) return sendSse(response, chatStreamEvents(model, this.replyText, includeUsage, undefined, id), {}, headers);
        return sendJson(response, 200, chatCompletion(model, this.replyText, undefined, id), headers);
      }
      case 'POST /v1/completions':
        if (stream) return sendSse(response, completionStreamEvents(model, this.replyText, includeUsage), {}, headers);
        return sendJson(response, 200, {
          id: 'cmpl-fake1', object: 'text_completion', created: 1741570283, model,
          choices: [{ text: this.replyText, index: 0, logprobs: null, finish_reason: 'stop' }],
          usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
        }, headers);
      case 'POST /v1/embeddings':
        return sendJson(response, 200, { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }], model, usage: { prompt_tokens: 4, total_tokens: 4 } }, headers);
      case 'GET /v1/models':
        return sendJson(response, 200, { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', created: 1, owned_by: 'openai' }, { id: 'gpt-4o', object: 'model', created: 1, owned_by: 'openai' }] }, headers);
      case 'POST /v1/audio/transcriptions':
        // Echo what arrived so a test can prove the upload was byte-exact.
        return sendJson(response, 200, { text: `sha256:${createHash('sha256').update(request.body).digest('hex')} bytes:${request.body.length}` }, headers);
      case 'POST /v1/realtime/calls':
        return this.answerCall(request, response, headers);
      default:
        if (await this.objects.handle(request, response, headers)) return;
        return sendJson(response, 404, openAiError(404, `Unknown fake route ${request.method} ${request.path}`, 'invalid_request_error', null));
    }
  }
}
