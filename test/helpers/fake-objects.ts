import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { RecordedRequest } from './fake-upstream.js';

/**
 * The stateful half of the fake OpenAI upstream: files, batches, responses, vector stores and
 * stored chat completions, kept per account (the API key a request carried) so tests can prove
 * which caller sees which object. Shapes follow the API reference
 * (https://platform.openai.com/docs/api-reference) as the official SDK types them
 * (node_modules/openai/resources/**.d.ts).
 *
 * Deliberate simplifications: work happens on the next retrieve (a background response or a batch
 * is finished by the first GET of it, a cancelling batch is cancelled), usage is fixed (responses
 * report `responseUsage` and end as `responseEnd` says), and an
 * `after`/`before` cursor that names no object of the listed set is a 400 rather than a guess.
 */

export type ObjectKind = 'file' | 'batch' | 'response' | 'vector_store' | 'vector_store.file' | 'chat.completion';

type Json = Record<string, unknown>;

export interface StoredObject {
  readonly kind: ObjectKind;
  /** Its key in `FakeObjects.get`: the id, or `vs_…/file-…` for a vector store file (whose id is the file's). */
  readonly key: string;
  /** The API key that created it; requests carrying another key get 404 and lists without it. */
  readonly account: string;
  /** The object as the API answers it; its status moves on as the fake advances it. */
  body: Json;
  /** A file's bytes. */
  content?: Buffer;
  /** A response's input items, or a stored chat completion's request messages. */
  items?: Json[];
  /** What a queued background response becomes on its next retrieve. */
  pending?: Json;
  readonly seq: number;
}

interface Call {
  readonly request: RecordedRequest;
  readonly response: ServerResponse;
  readonly account: string;
  readonly query: URLSearchParams;
  readonly headers: Record<string, string>;
}

type Route = readonly [method: string, pattern: RegExp, run: (call: Call, ...params: string[]) => void | Promise<void>];

const RESPONSE_USAGE = { input_tokens: 12, input_tokens_details: { cached_tokens: 0 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 17 };

/** How a response ends: its status, and the terminal event of its stream (`response.<status>`). */
export type ResponseEnd = 'completed' | 'incomplete' | 'failed';

const NOT_FOUND: Record<ObjectKind, (id: string) => string> = {
  file: (id) => `No such File object: ${id}`,
  batch: (id) => `No batch found with id '${id}'.`,
  response: (id) => `Response with id '${id}' not found.`,
  vector_store: (id) => `No vector store found with id '${id}'.`,
  'vector_store.file': (id) => `No file found with id '${id}' in this vector store.`,
  'chat.completion': (id) => `Chat completion with id '${id}' not found.`,
};

/** The account a request belongs to: its bearer token, or Azure's `api-key` header. */
export function accountOf(request: RecordedRequest): string {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string' && /^bearer /i.test(authorization)) return authorization.slice(7).trim();
  const apiKey = request.headers['api-key'];
  return typeof apiKey === 'string' ? apiKey : '';
}

export class FakeObjects {
  private readonly store = new Map<string, StoredObject>();
  private seq = 0;
  private readonly replyText: () => string;
  /** The usage every response reports from now on (set it to test metering; `resetResponses()` restores it). */
  responseUsage: Json = RESPONSE_USAGE;
  /** How responses made from now on end (`resetResponses()` restores `completed`). */
  responseEnd: ResponseEnd = 'completed';

  private readonly routes: readonly Route[] = [
    ['POST', /^\/v1\/files$/, (call) => this.createFile(call)],
    ['GET', /^\/v1\/files$/, (call) => this.page(call, this.mine(call, 'file', (file) => !call.query.get('purpose') || file.purpose === call.query.get('purpose')), 'desc', 10_000)],
    ['GET', /^\/v1\/files\/([^/]+)$/, (call, id) => this.answer(call, 'file', id, (file) => file.body)],
    ['GET', /^\/v1\/files\/([^/]+)\/content$/, (call, id) => this.fileContent(call, id)],
    ['DELETE', /^\/v1\/files\/([^/]+)$/, (call, id) => this.remove(call, 'file', id, 'file')],
    ['POST', /^\/v1\/batches$/, (call) => this.createBatch(call)],
    ['GET', /^\/v1\/batches$/, (call) => this.page(call, this.mine(call, 'batch'), 'desc')],
    ['GET', /^\/v1\/batches\/([^/]+)$/, (call, id) => this.answer(call, 'batch', id, (batch) => this.advanceBatch(batch))],
    ['POST', /^\/v1\/batches\/([^/]+)\/cancel$/, (call, id) => this.cancelBatch(call, id)],
    ['POST', /^\/v1\/responses$/, (call) => this.createResponse(call)],
    ['GET', /^\/v1\/responses\/([^/]+)$/, (call, id) => this.retrieveResponse(call, id)],
    ['DELETE', /^\/v1\/responses\/([^/]+)$/, (call, id) => this.remove(call, 'response', id, 'response.deleted')],
    ['GET', /^\/v1\/responses\/([^/]+)\/input_items$/, (call, id) => this.pageItems(call, 'response', id, 'desc')],
    ['POST', /^\/v1\/responses\/([^/]+)\/cancel$/, (call, id) => this.cancelResponse(call, id)],
    ['POST', /^\/v1\/vector_stores$/, (call) => this.createVectorStore(call)],
    ['GET', /^\/v1\/vector_stores$/, (call) => this.page(call, this.mine(call, 'vector_store'), 'desc')],
    ['GET', /^\/v1\/vector_stores\/([^/]+)$/, (call, id) => this.answer(call, 'vector_store', id, (store) => store.body)],
    ['POST', /^\/v1\/vector_stores\/([^/]+)$/, (call, id) => this.answer(call, 'vector_store', id, (store) => this.update(store, call, ['name', 'metadata', 'expires_after']))],
    ['DELETE', /^\/v1\/vector_stores\/([^/]+)$/, (call, id) => this.remove(call, 'vector_store', id, 'vector_store.deleted')],
    ['POST', /^\/v1\/vector_stores\/([^/]+)\/files$/, (call, id) => this.attachFile(call, id)],
    ['GET', /^\/v1\/vector_stores\/([^/]+)\/files$/, (call, id) => this.listStoreFiles(call, id)],
    ['GET', /^\/v1\/vector_stores\/([^/]+)\/files\/([^/]+)$/, (call, id, fileId) => this.answer(call, 'vector_store.file', `${id}/${fileId}`, (file) => file.body)],
    ['DELETE', /^\/v1\/vector_stores\/([^/]+)\/files\/([^/]+)$/, (call, id, fileId) => this.remove(call, 'vector_store.file', `${id}/${fileId}`, 'vector_store.file.deleted')],
    ['GET', /^\/v1\/chat\/completions$/, (call) => this.page(call, this.mine(call, 'chat.completion', (completion) => matchesChatFilter(completion, call.query)), 'asc')],
    ['GET', /^\/v1\/chat\/completions\/([^/]+)$/, (call, id) => this.answer(call, 'chat.completion', id, (stored) => stored.body)],
    ['POST', /^\/v1\/chat\/completions\/([^/]+)$/, (call, id) => this.answer(call, 'chat.completion', id, (stored) => this.update(stored, call, ['metadata']))],
    ['DELETE', /^\/v1\/chat\/completions\/([^/]+)$/, (call, id) => this.remove(call, 'chat.completion', id, 'chat.completion.deleted')],
    ['GET', /^\/v1\/chat\/completions\/([^/]+)\/messages$/, (call, id) => this.pageItems(call, 'chat.completion', id, 'asc')],
  ];

  constructor(replyText: () => string) {
    this.replyText = replyText;
  }

  /** How many objects the fake holds, of one kind and/or one account. */
  count(kind?: ObjectKind, account?: string): number {
    return this.list(kind, account).length;
  }

  /** One object by id (`vs_…/file-…` for a vector store file), whoever owns it. */
  get(key: string): StoredObject | undefined {
    return this.store.get(key);
  }

  /** The objects held, oldest first. */
  list(kind?: ObjectKind, account?: string): StoredObject[] {
    return [...this.store.values()].filter((stored) => (kind === undefined || stored.kind === kind) && (account === undefined || stored.account === account)).sort((a, b) => a.seq - b.seq);
  }

  reset(): void {
    this.store.clear();
    this.resetResponses();
  }

  /** Responses report the default usage and complete again. */
  resetResponses(): void {
    this.responseUsage = RESPONSE_USAGE;
    this.responseEnd = 'completed';
  }

  /** Keeps a chat completion made with `store: true` under a fresh id, which it returns. */
  keepChatCompletion(request: RecordedRequest, completion: Json): string {
    const body = jsonOf(request);
    const id = newId('chatcmpl-');
    const messages = Array.isArray(body.messages) ? body.messages.filter(isObject) : [];
    this.add('chat.completion', accountOf(request), { ...completion, id, metadata: isObject(body.metadata) ? body.metadata : {} }, { items: messages.map((message, index) => ({ ...message, id: `${id}-${index}` })) });
    return id;
  }

  /** Answers the request when it is one of the object routes; false leaves it to the caller. */
  async handle(request: RecordedRequest, response: ServerResponse, headers: Record<string, string> = {}): Promise<boolean> {
    for (const [method, pattern, run] of this.routes) {
      const match = request.method === method ? pattern.exec(request.path) : null;
      if (!match) continue;
      const call: Call = { request, response, account: accountOf(request), query: new URL(request.url, 'http://fake.invalid').searchParams, headers };
      await run(call, ...match.slice(1).map(decodeSegment));
      return true;
    }
    return false;
  }

  private add(kind: ObjectKind, account: string, body: Json & { id: string }, extra: { key?: string; content?: Buffer; items?: Json[]; pending?: Json } = {}): StoredObject {
    const stored: StoredObject = { kind, key: extra.key ?? body.id, account, body, content: extra.content, items: extra.items, pending: extra.pending, seq: this.seq++ };
    this.store.set(stored.key, stored);
    return stored;
  }

  /** The object when it exists in the caller's account: another account's object does not exist for it. */
  private find(call: Call, kind: ObjectKind, key: string): StoredObject | undefined {
    const stored = this.store.get(key);
    return stored?.kind === kind && stored.account === call.account ? stored : undefined;
  }

  private mine(call: Call, kind: ObjectKind, keep: (body: Json) => boolean = () => true): Json[] {
    return this.list(kind, call.account).map((stored) => stored.body).filter(keep);
  }

  private notFound(call: Call, kind: ObjectKind, id: string, param = 'id'): void {
    reply(call, 404, invalid(NOT_FOUND[kind](id.replace(/^[^/]*\//, '')), param));
  }

  private answer(call: Call, kind: ObjectKind, key: string, view: (stored: StoredObject) => Json): void {
    const stored = this.find(call, kind, key);
    if (!stored) return this.notFound(call, kind, key);
    reply(call, 200, view(stored));
  }

  private remove(call: Call, kind: ObjectKind, key: string, object: string): void {
    const stored = this.find(call, kind, key);
    if (!stored) return this.notFound(call, kind, key);
    this.store.delete(key);
    if (kind === 'vector_store') for (const file of this.list('vector_store.file')) if (file.key.startsWith(`${key}/`)) this.store.delete(file.key);
    if (kind === 'vector_store.file') this.recount(String(stored.body.vector_store_id));
    reply(call, 200, { id: stored.body.id, object, deleted: true });
  }

  private update(stored: StoredObject, call: Call, fields: readonly string[]): Json {
    const body = jsonOf(call.request);
    for (const field of fields) if (field in body) stored.body[field] = body[field];
    return stored.body;
  }

  /** A cursor page as the API lists: `limit` (default 20), `order`, and `after`/`before` object ids. */
  private page(call: Call, items: readonly Json[], defaultOrder: 'asc' | 'desc', maxLimit = 100): void {
    const order = call.query.get('order') ?? defaultOrder;
    const ordered = order === 'asc' ? [...items] : [...items].reverse();
    const limit = call.query.has('limit') ? Number(call.query.get('limit')) : 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) return reply(call, 400, invalid(`Invalid 'limit': expected an integer from 1 to ${maxLimit}.`, 'limit'));
    const position = (param: 'after' | 'before'): number | undefined => {
      const cursor = call.query.get(param);
      return cursor === null ? undefined : ordered.findIndex((item) => item.id === cursor);
    };
    const after = position('after');
    const before = position('before');
    for (const [param, index] of [['after', after], ['before', before]] as const) {
      if (index === -1) return reply(call, 400, invalid(`Invalid '${param}': no object '${call.query.get(param)}' in this list.`, param));
    }
    const start = after === undefined ? 0 : after + 1;
    const end = before ?? ordered.length;
    // `before` alone pages backwards: the `limit` items closest to the cursor.
    const backwards = before !== undefined && after === undefined;
    const data = backwards ? ordered.slice(Math.max(start, end - limit), end) : ordered.slice(start, Math.min(end, start + limit));
    const hasMore = backwards ? end - limit > start : start + limit < end;
    reply(call, 200, { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore });
  }

  private pageItems(call: Call, kind: ObjectKind, id: string, defaultOrder: 'asc' | 'desc'): void {
    const stored = this.find(call, kind, id);
    if (!stored) return this.notFound(call, kind, id);
    this.page(call, stored.items ?? [], defaultOrder);
  }

  private async createFile(call: Call): Promise<void> {
    let form: FormData;
    try {
      const headers = { 'content-type': String(call.request.headers['content-type'] ?? '') };
      form = await new Request('http://fake.invalid/v1/files', { method: 'POST', headers, body: call.request.body }).formData();
    } catch {
      return reply(call, 400, invalid('Expected a multipart/form-data body with `file` and `purpose`.', null));
    }
    const file = form.get('file');
    const purpose = form.get('purpose');
    if (typeof file === 'string' || file === null) return reply(call, 400, invalid("Missing required parameter: 'file'.", 'file', 'missing_required_parameter'));
    if (typeof purpose !== 'string' || purpose === '') return reply(call, 400, invalid("Missing required parameter: 'purpose'.", 'purpose', 'missing_required_parameter'));
    reply(call, 200, this.addFile(call.account, file.name, purpose, Buffer.from(await file.arrayBuffer())).body);
  }

  private addFile(account: string, filename: string, purpose: string, content: Buffer): StoredObject {
    const body = { id: newId('file-'), object: 'file', bytes: content.length, created_at: now(), filename, purpose, status: 'processed', expires_at: null, status_details: null };
    return this.add('file', account, body, { content });
  }

  private fileContent(call: Call, id: string): void {
    const file = this.find(call, 'file', id);
    if (!file) return this.notFound(call, 'file', id);
    const content = file.content ?? Buffer.alloc(0);
    call.response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': content.length, ...call.headers });
    call.response.end(content);
  }

  private createBatch(call: Call): void {
    const body = jsonOf(call.request);
    for (const param of ['input_file_id', 'endpoint']) {
      if (typeof body[param] !== 'string') return reply(call, 400, invalid(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter'));
    }
    const inputFileId = body.input_file_id as string;
    if (!this.find(call, 'file', inputFileId)) return this.notFound(call, 'file', inputFileId, 'input_file_id');
    const createdAt = now();
    const batch = this.add('batch', call.account, {
      id: newId('batch_'), object: 'batch', endpoint: body.endpoint, errors: null, input_file_id: inputFileId,
      completion_window: body.completion_window ?? '24h', status: 'validating', output_file_id: null, error_file_id: null,
      created_at: createdAt, in_progress_at: null, expires_at: createdAt + 86_400, finalizing_at: null, completed_at: null,
      failed_at: null, expired_at: null, cancelling_at: null, cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 }, metadata: isObject(body.metadata) ? body.metadata : null,
    });
    reply(call, 200, batch.body);
  }

  /** Runs a validating batch at once (every line answered, or the batch failed on its first bad line); a cancelling one ends cancelled. */
  private advanceBatch(batch: StoredObject): Json {
    const at = now();
    if (batch.body.status === 'cancelling') Object.assign(batch.body, { status: 'cancelled', cancelled_at: at });
    if (batch.body.status !== 'validating') return batch.body;
    const input = this.store.get(String(batch.body.input_file_id));
    const lines = (input?.content?.toString('utf8') ?? '').split('\n').filter((line) => line.trim() !== '');
    const outputs: string[] = [];
    let model: unknown;
    for (const [index, line] of lines.entries()) {
      const request = parseObject(line);
      const problem = !request ? 'is not a JSON object' : typeof request.custom_id !== 'string' ? 'has no custom_id' : request.url !== batch.body.endpoint ? `has url ${String(request.url)}, not the batch endpoint` : !isObject(request.body) ? 'has no body' : undefined;
      if (problem || !request) {
        const errors = { object: 'list', data: [{ code: 'invalid_request', line: index + 1, message: `Line ${index + 1} ${problem}.`, param: null }] };
        Object.assign(batch.body, { status: 'failed', failed_at: at, errors });
        return batch.body;
      }
      model ??= (request.body as Json).model;
      outputs.push(JSON.stringify({ id: newId('batch_req_'), custom_id: request.custom_id, response: { status_code: 200, request_id: newId('req_'), body: this.answerLine(String(request.url), request.body as Json) }, error: null }));
    }
    const output = this.addFile(batch.account, `${String(batch.body.id)}_output.jsonl`, 'batch_output', Buffer.from(outputs.map((line) => `${line}\n`).join('')));
    const n = outputs.length;
    Object.assign(batch.body, {
      status: 'completed', in_progress_at: at, finalizing_at: at, completed_at: at, output_file_id: output.body.id, model: model ?? null,
      request_counts: { total: n, completed: n, failed: 0 },
      usage: { input_tokens: 12 * n, input_tokens_details: { cached_tokens: 0 }, output_tokens: 5 * n, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 17 * n },
    });
    return batch.body;
  }

  private answerLine(url: string, body: Json): Json {
    const model = typeof body.model === 'string' ? body.model : 'gpt-4o-mini';
    if (url === '/v1/embeddings') return { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }], model, usage: { prompt_tokens: 4, total_tokens: 4 } };
    if (url === '/v1/responses') return this.responseObject(newId('resp_'), body);
    return {
      id: newId('chatcmpl-'), object: 'chat.completion', created: now(), model,
      choices: [{ index: 0, message: { role: 'assistant', content: this.replyText(), refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
    };
  }

  private cancelBatch(call: Call, id: string): void {
    const batch = this.find(call, 'batch', id);
    if (!batch) return this.notFound(call, 'batch', id);
    if (batch.body.status === 'validating' || batch.body.status === 'in_progress') Object.assign(batch.body, { status: 'cancelling', cancelling_at: now() });
    else if (batch.body.status !== 'cancelling' && batch.body.status !== 'cancelled') return reply(call, 400, invalid(`Cannot cancel a batch with status '${String(batch.body.status)}'.`, null));
    reply(call, 200, batch.body);
  }

  private createResponse(call: Call): void {
    const body = jsonOf(call.request);
    const previous = body.previous_response_id;
    if (typeof previous === 'string' && !this.find(call, 'response', previous)) {
      return reply(call, 404, invalid(`Previous response with id '${previous}' not found.`, 'previous_response_id', 'previous_response_not_found'));
    }
    if (typeof body.model !== 'string') return reply(call, 400, invalid("Missing required parameter: 'model'.", 'model', 'missing_required_parameter'));
    const store = body.store !== false;
    const background = body.background === true;
    if (background && !store) return reply(call, 400, invalid('Background responses must be stored (store: true).', 'background'));
    const full = this.responseObject(newId('resp_'), body);
    const items = inputItems(body.input);
    if (body.stream === true) {
      if (store) this.add('response', call.account, full, { items });
      return this.streamResponse(call, full);
    }
    if (!background) {
      if (store) this.add('response', call.account, full, { items });
      return reply(call, 200, full);
    }
    const queued = { ...full, status: 'queued', completed_at: null, output: [], usage: null };
    this.add('response', call.account, queued, { items, pending: full });
    reply(call, 200, queued);
  }

  /** `?stream=true` replays the response's event stream (a queued background response runs first), as the API does for a background response. */
  private retrieveResponse(call: Call, id: string): void {
    const stored = this.find(call, 'response', id);
    if (!stored) return this.notFound(call, 'response', id);
    const body = this.advanceResponse(stored);
    if (call.query.get('stream') === 'true') {
      if (!Array.isArray(body.output) || body.output.length === 0) return reply(call, 400, invalid('The fake upstream streams only responses that produced output.', 'stream'));
      return this.streamResponse(call, body);
    }
    reply(call, 200, body);
  }

  private advanceResponse(stored: StoredObject): Json {
    if (stored.pending) {
      stored.body = { ...stored.pending, completed_at: now() };
      stored.pending = undefined;
    }
    return stored.body;
  }

  private cancelResponse(call: Call, id: string): void {
    const stored = this.find(call, 'response', id);
    if (!stored) return this.notFound(call, 'response', id);
    if (stored.body.background !== true) return reply(call, 400, invalid('Only responses created with background: true can be cancelled.', null));
    if (stored.pending) {
      stored.body = { ...stored.body, status: 'cancelled' };
      stored.pending = undefined;
    }
    reply(call, 200, stored.body);
  }

  /**
   * A finished response to `body` (a POST /v1/responses body), ended as `responseEnd` says, with
   * `responseUsage`; the WebSocket fake (fake-sockets.ts) builds its turns from it too.
   */
  responseObject(id: string, body: Json): Json & { id: string } {
    const text = this.replyText();
    const createdAt = now();
    const end = this.responseEnd;
    return {
      id, object: 'response', created_at: createdAt, status: end, background: body.background === true, completed_at: end === 'completed' ? createdAt : null,
      error: end === 'failed' ? { code: 'server_error', message: 'The fake upstream failed this response on purpose.' } : null,
      incomplete_details: end === 'incomplete' ? { reason: 'max_output_tokens' } : null, instructions: body.instructions ?? null, max_output_tokens: body.max_output_tokens ?? null,
      max_tool_calls: null, model: typeof body.model === 'string' ? body.model : 'gpt-4o-mini',
      output: [{ id: newId('msg_'), type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', annotations: [], logprobs: [], text }] }],
      parallel_tool_calls: true, previous_response_id: body.previous_response_id ?? null, prompt_cache_key: null,
      reasoning: { effort: null, summary: null }, safety_identifier: null, service_tier: 'default', store: body.store !== false,
      temperature: body.temperature ?? 1, text: { format: { type: 'text' }, verbosity: 'medium' }, tool_choice: 'auto',
      tools: Array.isArray(body.tools) ? body.tools : [], top_logprobs: 0, top_p: body.top_p ?? 1, truncation: 'disabled',
      usage: this.responseUsage, user: null, metadata: isObject(body.metadata) ? body.metadata : {},
    };
  }

  /** The Responses streaming sequence (https://platform.openai.com/docs/api-reference/responses-streaming) of a completed response, numbered; also sent as WebSocket frames by fake-sockets.ts. */
  responseEvents(full: Json): Json[] {
    const message = (full.output as Json[])[0]!;
    const text = this.replyText();
    const start = { ...full, status: 'in_progress', completed_at: null, output: [], usage: null };
    const at = { item_id: message.id, output_index: 0, content_index: 0 };
    const part = { type: 'output_text', annotations: [], logprobs: [], text: '' };
    const events: Json[] = [
      { type: 'response.created', response: start },
      { type: 'response.in_progress', response: start },
      { type: 'response.output_item.added', output_index: 0, item: { ...message, status: 'in_progress', content: [] } },
      { type: 'response.content_part.added', ...at, part },
      ...(text.match(/\s*\S+\s*/g) ?? [text]).map((delta) => ({ type: 'response.output_text.delta', ...at, delta, logprobs: [] })),
      { type: 'response.output_text.done', ...at, text, logprobs: [] },
      { type: 'response.content_part.done', ...at, part: { ...part, text } },
      { type: 'response.output_item.done', output_index: 0, item: message },
      // `response.completed`, `response.incomplete` or `response.failed`, as the response ended.
      { type: `response.${full.status === 'incomplete' || full.status === 'failed' ? full.status : 'completed'}`, response: full },
    ];
    return events.map((event, index) => ({ ...event, sequence_number: index }));
  }

  /** Named SSE events without `[DONE]`. */
  private streamResponse(call: Call, full: Json): void {
    call.response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...call.headers });
    for (const event of this.responseEvents(full)) call.response.write(`event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`);
    call.response.end();
  }

  private createVectorStore(call: Call): void {
    const body = jsonOf(call.request);
    const fileIds = Array.isArray(body.file_ids) ? body.file_ids.map(String) : [];
    const files: StoredObject[] = [];
    for (const fileId of fileIds) {
      const file = this.find(call, 'file', fileId);
      if (!file) return this.notFound(call, 'file', fileId, 'file_ids');
      files.push(file);
    }
    const createdAt = now();
    const store = this.add('vector_store', call.account, {
      id: newId('vs_'), object: 'vector_store', created_at: createdAt, name: typeof body.name === 'string' ? body.name : '', usage_bytes: 0,
      file_counts: { in_progress: 0, completed: 0, failed: 0, cancelled: 0, total: 0 }, status: 'completed',
      expires_after: body.expires_after ?? null, expires_at: null, last_active_at: createdAt, metadata: isObject(body.metadata) ? body.metadata : {},
    });
    for (const file of files) this.attach(store, file, undefined);
    reply(call, 200, store.body);
  }

  private attachFile(call: Call, storeId: string): void {
    const store = this.find(call, 'vector_store', storeId);
    if (!store) return this.notFound(call, 'vector_store', storeId);
    const body = jsonOf(call.request);
    const fileId = String(body.file_id ?? '');
    const file = this.find(call, 'file', fileId);
    if (!file) return this.notFound(call, 'file', fileId, 'file_id');
    reply(call, 200, this.attach(store, file, isObject(body.attributes) ? body.attributes : undefined).body);
  }

  private attach(store: StoredObject, file: StoredObject, attributes: Json | undefined): StoredObject {
    const key = `${String(store.body.id)}/${String(file.body.id)}`;
    const existing = this.store.get(key);
    if (existing) return existing;
    const attached = this.add('vector_store.file', store.account, {
      id: String(file.body.id), object: 'vector_store.file', usage_bytes: file.content?.length ?? 0, created_at: now(), vector_store_id: store.body.id,
      status: 'completed', last_error: null, chunking_strategy: { type: 'static', static: { max_chunk_size_tokens: 800, chunk_overlap_tokens: 400 } }, attributes: attributes ?? {},
    }, { key });
    this.recount(String(store.body.id));
    return attached;
  }

  private recount(storeId: string): void {
    const store = this.store.get(storeId);
    if (!store) return;
    const files = this.list('vector_store.file').filter((file) => file.key.startsWith(`${storeId}/`));
    store.body.file_counts = { in_progress: 0, completed: files.length, failed: 0, cancelled: 0, total: files.length };
    store.body.usage_bytes = files.reduce((sum, file) => sum + Number(file.body.usage_bytes), 0);
  }

  private listStoreFiles(call: Call, storeId: string): void {
    if (!this.find(call, 'vector_store', storeId)) return this.notFound(call, 'vector_store', storeId);
    const status = call.query.get('filter');
    const files = this.mine(call, 'vector_store.file', (file) => file.vector_store_id === storeId && (!status || file.status === status));
    this.page(call, files, 'desc');
  }
}

function matchesChatFilter(completion: Json, query: URLSearchParams): boolean {
  if (query.has('model') && completion.model !== query.get('model')) return false;
  const metadata = isObject(completion.metadata) ? completion.metadata : {};
  for (const [name, value] of query) {
    const key = /^metadata\[(.+)\]$/.exec(name)?.[1];
    if (key !== undefined && metadata[key] !== value) return false;
  }
  return true;
}

/** A response's input as its input_items list shows it: every item with an id, message text as content parts. */
function inputItems(input: unknown): Json[] {
  const list: unknown[] = typeof input === 'string' ? [{ role: 'user', content: input }] : Array.isArray(input) ? input : [];
  return list.filter(isObject).map((item) => {
    if (item.type !== undefined && item.type !== 'message') return { ...item, id: item.id ?? newId('item_') };
    const role = item.role ?? 'user';
    const content = typeof item.content === 'string' ? [role === 'assistant' ? { type: 'output_text', text: item.content, annotations: [] } : { type: 'input_text', text: item.content }] : item.content ?? [];
    return { id: item.id ?? newId('msg_'), type: 'message', role, status: 'completed', content };
  });
}

function reply(call: Call, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  call.response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...call.headers });
  call.response.end(text);
}

function invalid(message: string, param: string | null, code: string | null = null): Json {
  return { error: { message, type: 'invalid_request_error', param, code } };
}

function jsonOf(request: RecordedRequest): Json {
  return request.json ?? parseObject(request.body.toString('utf8')) ?? {};
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

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Ids are unique across the whole fake, whatever the account. */
function newId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
