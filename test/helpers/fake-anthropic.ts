import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 playing Anthropic's API (https://docs.anthropic.com/en/api/messages):
 * `POST /v1/messages` (JSON, or the standard event stream with `stream: true`),
 * `POST /v1/messages/count_tokens` and `GET /v1/models`. It records every request and can be
 * told to misbehave: an error status with Anthropic's error body (529 overloaded…), an `error`
 * event or a dropped connection mid-stream, a hang, or any scripted answer.
 */

/** One request as the fake received it. */
export interface RecordedAnthropicRequest {
  method: string;
  /** Path and query as sent, e.g. `/v1/messages?beta=true`. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** The body parsed as JSON, when it is a JSON object. */
  json: Record<string, unknown> | undefined;
  receivedAt: number;
}

export type AnthropicHandler = (request: RecordedAnthropicRequest, response: ServerResponse, socket: Socket) => void | Promise<void>;

/** A `tool_use` block the fake answers with: its input is streamed as `input_json_delta` pieces. */
export interface FakeToolUse {
  name: string;
  input: Record<string, unknown>;
  /** Default `toolu_fake<N>`. */
  id?: string;
}

/** The prompt side of the usage the fake reports; output_tokens is counted from the answer. */
export interface FakePromptUsage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface FakeModel {
  id: string;
  display_name: string;
  created_at: string;
}

export interface AnthropicSseEvent {
  event: string;
  data: Record<string, unknown>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Anthropic's error body (https://docs.anthropic.com/en/api/errors). */
export function anthropicError(type: string, message: string): Record<string, unknown> {
  return { type: 'error', error: { type, message } };
}

/** The error `type` Anthropic uses for a status. */
export function anthropicErrorType(status: number): string {
  const types: Record<number, string> = { 400: 'invalid_request_error', 401: 'authentication_error', 402: 'billing_error', 403: 'permission_error', 404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error', 504: 'timeout_error', 529: 'overloaded_error' };
  return types[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

/** Output tokens of an answer as the fake counts them: one per word of text, one per tool call and per input field. */
function outputTokens(text: string, tools: readonly FakeToolUse[]): number {
  return (text.match(/\S+/g) ?? []).length + tools.reduce((sum, tool) => sum + 1 + Object.keys(tool.input).length, 0);
}

function toolBlocks(tools: readonly FakeToolUse[]): Array<Required<FakeToolUse> & { type: 'tool_use' }> {
  return tools.map((tool, index) => ({ type: 'tool_use', id: tool.id ?? `toolu_fake${index + 1}`, name: tool.name, input: tool.input }));
}

/** A whole message as `POST /v1/messages` answers without `stream`. */
export function anthropicMessage(model: string, text: string, tools: readonly FakeToolUse[] = [], usage: FakePromptUsage = DEFAULT_USAGE, id = 'msg_fake1'): Record<string, unknown> {
  const content: unknown[] = text === '' ? [] : [{ type: 'text', text }];
  content.push(...toolBlocks(tools));
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: tools.length > 0 ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { ...usage, output_tokens: outputTokens(text, tools) },
  };
}

/**
 * The events of a streamed message, in Anthropic's standard order: `message_start`,
 * `content_block_start`, `ping`, `content_block_delta` (`text_delta` per word; a tool's input as
 * `input_json_delta` in three pieces), `content_block_stop`, `message_delta` (stop reason and
 * output tokens), `message_stop`.
 */
export function anthropicStreamEvents(model: string, text: string, tools: readonly FakeToolUse[] = [], usage: FakePromptUsage = DEFAULT_USAGE, id = 'msg_fake1'): AnthropicSseEvent[] {
  const events: AnthropicSseEvent[] = [];
  const push = (data: Record<string, unknown>): void => void events.push({ event: String(data.type), data });
  push({ type: 'message_start', message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } });
  let index = 0;
  if (text !== '') {
    push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
    push({ type: 'ping' });
    for (const piece of text.match(/\S+\s*/g) ?? []) push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
    push({ type: 'content_block_stop', index });
    index += 1;
  }
  for (const block of toolBlocks(tools)) {
    push({ type: 'content_block_start', index, content_block: { ...block, input: {} } });
    if (index === 0) push({ type: 'ping' });
    const json = JSON.stringify(block.input);
    const third = Math.ceil(json.length / 3);
    for (let at = 0; at < json.length; at += third) push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: json.slice(at, at + third) } });
    push({ type: 'content_block_stop', index });
    index += 1;
  }
  push({ type: 'message_delta', delta: { stop_reason: tools.length > 0 ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: outputTokens(text, tools) } });
  push({ type: 'message_stop' });
  return events;
}

export function sseFrame(event: AnthropicSseEvent): string {
  return `event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

const DEFAULT_USAGE: FakePromptUsage = { input_tokens: 25, cache_creation_input_tokens: 1000, cache_read_input_tokens: 3000 };

export const FAKE_MODELS: readonly FakeModel[] = [
  { id: 'claude-sonnet-4-5-20250929', display_name: 'Claude Sonnet 4.5', created_at: '2025-09-29T00:00:00Z' },
  { id: 'claude-haiku-4-5-20251001', display_name: 'Claude Haiku 4.5', created_at: '2025-10-01T00:00:00Z' },
  { id: 'claude-opus-4-1-20250805', display_name: 'Claude Opus 4.1', created_at: '2025-08-05T00:00:00Z' },
];

export class FakeAnthropic {
  readonly requests: RecordedAnthropicRequest[] = [];
  /** The text every message answers with ('' for a tool call alone). */
  replyText = 'Hello from the fake Anthropic upstream.';
  /** When set, messages answer with these tool_use blocks after the text (stop_reason `tool_use`). */
  replyToolUse: FakeToolUse[] | undefined;
  /** The prompt side of every answer's usage. */
  usage: FakePromptUsage = { ...DEFAULT_USAGE };
  /** What `count_tokens` answers; default: a quarter of the request's message bytes. */
  countTokens: number | undefined;
  /** What `GET /v1/models` lists. */
  models: FakeModel[] = [...FAKE_MODELS];
  /** Delay between stream events. */
  eventDelayMs = 0;
  private readonly scripted: Array<{ handler: AnthropicHandler; remaining: number }> = [];
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private port = 0;

  static async start(): Promise<FakeAnthropic> {
    const fake = new FakeAnthropic();
    await fake.listen();
    return fake;
  }

  /** Base URL as a gateway upstream takes it: `http://127.0.0.1:PORT/v1`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  /** As Anthropic's clients take it (`ANTHROPIC_BASE_URL`, the SDK's `baseURL`): no `/v1`. */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next `times` requests are answered by `handler` instead of the defaults. */
  script(handler: AnthropicHandler, times = 1): this {
    this.scripted.push({ handler, remaining: times });
    return this;
  }

  /** Answer the next request(s) with this status and Anthropic's error body. */
  failWith(status: number, message = `fake ${status}`, headers: Record<string, string> = {}, times = 1): this {
    return this.script((request, response) => this.sendJson(response, status, anthropicError(anthropicErrorType(status), message), headers), times);
  }

  /** 529 `overloaded_error`, as Anthropic answers when it is over capacity. */
  overloaded(times = 1, headers: Record<string, string> = {}): this {
    return this.failWith(529, 'Overloaded', headers, times);
  }

  /** A streamed answer that sends `message_start` and a first delta, then an `error` event (`overloaded_error` by default) and ends. */
  errorMidStream(type = 'overloaded_error', message = 'Overloaded', times = 1): this {
    return this.script(async (request, response) => {
      const events = this.eventsFor(request).slice(0, 4);
      await this.sendEvents(response, [...events, { event: 'error', data: anthropicError(type, message) }]);
    }, times);
  }

  /** A streamed answer that sends `message_start` and a first delta, then closes the connection without an end. */
  dropMidStream(times = 1): this {
    return this.script(async (request, response, socket) => {
      await this.sendEvents(response, this.eventsFor(request).slice(0, 4), false);
      socket.destroy();
    }, times);
  }

  /** The next request(s) get no answer at all. */
  hang(times = 1): this {
    return this.script(() => undefined, times);
  }

  last(): RecordedAnthropicRequest {
    const request = this.requests.at(-1);
    if (!request) throw new Error('the fake Anthropic upstream has received no request');
    return request;
  }

  reset(): void {
    this.requests.length = 0;
    this.scripted.length = 0;
    this.replyToolUse = undefined;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async listen(): Promise<void> {
    this.server = createServer((request, response) => void this.onRequest(request, response));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private async onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of request) chunks.push(chunk as Buffer);
    } catch {
      return;
    }
    const body = Buffer.concat(chunks);
    let json: Record<string, unknown> | undefined;
    if (body.length > 0) {
      try {
        const parsed: unknown = JSON.parse(body.toString('utf8'));
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
      } catch {
        json = undefined;
      }
    }
    const url = request.url ?? '/';
    const queryAt = url.indexOf('?');
    const recorded: RecordedAnthropicRequest = {
      method: request.method ?? 'GET',
      url,
      path: queryAt === -1 ? url : url.slice(0, queryAt),
      query: new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1)),
      headers: request.headers,
      body,
      json,
      receivedAt: Date.now(),
    };
    this.requests.push(recorded);
    const script = this.scripted[0];
    if (script) {
      script.remaining -= 1;
      if (script.remaining <= 0) this.scripted.shift();
      await script.handler(recorded, response, request.socket);
      return;
    }
    await this.answerByDefault(recorded, response);
  }

  private async answerByDefault(request: RecordedAnthropicRequest, response: ServerResponse): Promise<void> {
    if (request.headers['x-api-key'] === undefined && request.headers.authorization === undefined) {
      return this.sendJson(response, 401, anthropicError('authentication_error', 'x-api-key header is required'));
    }
    const body = request.json;
    switch (`${request.method} ${request.path}`) {
      case 'POST /v1/messages': {
        const invalid = body === undefined ? 'the body must be a JSON object' : missing(body, ['model', 'max_tokens', 'messages']);
        if (invalid) return this.sendJson(response, 400, anthropicError('invalid_request_error', invalid));
        if (body!.stream === true) return this.sendEvents(response, this.eventsFor(request));
        return this.sendJson(response, 200, anthropicMessage(String(body!.model), this.replyText, this.replyToolUse ?? [], this.usage, this.messageId()));
      }
      case 'POST /v1/messages/count_tokens': {
        const invalid = body === undefined ? 'the body must be a JSON object' : missing(body, ['model', 'messages']);
        if (invalid) return this.sendJson(response, 400, anthropicError('invalid_request_error', invalid));
        return this.sendJson(response, 200, { input_tokens: this.countTokens ?? Math.ceil(JSON.stringify(body!.messages).length / 4) });
      }
      case 'GET /v1/models':
        return this.sendJson(response, 200, {
          data: this.models.map((model) => ({ type: 'model', ...model })),
          has_more: false,
          first_id: this.models[0]?.id ?? null,
          last_id: this.models.at(-1)?.id ?? null,
        });
      default:
        return this.sendJson(response, 404, anthropicError('not_found_error', `Unknown fake route ${request.method} ${request.path}`));
    }
  }

  private eventsFor(request: RecordedAnthropicRequest): AnthropicSseEvent[] {
    const model = typeof request.json?.model === 'string' ? request.json.model : 'claude-sonnet-4-5';
    return anthropicStreamEvents(model, this.replyText, this.replyToolUse ?? [], this.usage, this.messageId());
  }

  private messageId(): string {
    return `msg_fake${this.requests.length}`;
  }

  private headers(): Record<string, string> {
    return { 'request-id': `req_fake_${this.requests.length}` };
  }

  private sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...this.headers(), ...headers });
    response.end(text);
  }

  private async sendEvents(response: ServerResponse, events: readonly AnthropicSseEvent[], end = true): Promise<void> {
    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...this.headers() });
    response.flushHeaders();
    for (const [index, event] of events.entries()) {
      if (response.destroyed) return;
      if (index > 0 && this.eventDelayMs > 0) await sleep(this.eventDelayMs);
      response.write(sseFrame(event));
    }
    if (end) response.end();
    // Before a drop: the events sent so far must reach the client, not die in a buffer.
    else await new Promise<void>((resolve) => response.write('', () => resolve()));
  }
}

function missing(body: Record<string, unknown>, fields: readonly string[]): string | undefined {
  const absent = fields.find((field) => body[field] === undefined);
  return absent === undefined ? undefined : `${absent}: Field required`;
}
