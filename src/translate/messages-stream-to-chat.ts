// Anthropic Messages SSE → OpenAI chat completion chunks, event by event, nothing held back.
// In: https://docs.anthropic.com/en/api/messages-streaming; out:
// https://platform.openai.com/docs/api-reference/chat-streaming. Unknown event types are skipped,
// as Anthropic's versioning policy asks of clients; thinking is left out (OpenAI's chat
// completions never stream reasoning).

import { openAiErrorBody, type ErrorCode } from '../errors/index.js';
import { isObject, type Json } from './json.js';
import { chatIdFrom, finishReasonFrom, openAiUsageFrom } from './response-fields.js';

export class MessagesToChatStream {
  readonly #model: string;
  readonly #includeUsage: boolean;
  readonly #created = Math.floor(Date.now() / 1000);
  #id = chatIdFrom(undefined);
  #started = false;
  #finished = false;
  #done = false;
  /** Anthropic content block index → OpenAI `tool_calls[].index` (0-based among tool blocks). */
  readonly #tools = new Map<number, number>();
  /** message_start's usage, updated by message_delta's (whose counts are cumulative). */
  readonly #usage: Json = {};

  constructor(model: string, includeUsage: boolean) {
    this.#model = model;
    this.#includeUsage = includeUsage;
  }

  /** One parsed Anthropic event → the `data:` chunks to write now (maybe ''). */
  push(event: Record<string, unknown>): string {
    if (this.#done) return '';
    switch (event.type) {
      case 'message_start': {
        const message = isObject(event.message) ? event.message : {};
        if (typeof message.id === 'string') this.#id = chatIdFrom(message.id);
        if (isObject(message.usage)) this.#mergeUsage(message.usage);
        return this.#role();
      }
      case 'content_block_start':
        return this.#role() + this.#blockStart(event);
      case 'content_block_delta':
        return this.#role() + this.#blockDelta(event);
      case 'message_delta': {
        if (isObject(event.usage)) this.#mergeUsage(event.usage);
        const delta = isObject(event.delta) ? event.delta : {};
        return this.#role() + this.#finish(delta.stop_reason);
      }
      case 'error': {
        const error = isObject(event.error) ? event.error : {};
        return this.fail({
          type: typeof error.type === 'string' ? error.type : 'api_error',
          message: typeof error.message === 'string' ? error.message : 'The upstream failed mid-stream.',
        });
      }
      default:
        // ping, content_block_stop, message_stop, and event types added later.
        return '';
    }
  }

  /** The upstream's stream ended: the finish chunk if none came, the usage chunk if asked for, `[DONE]`. */
  finish(): string {
    if (this.#done) return '';
    let out = this.#role() + this.#finish(undefined);
    this.#done = true;
    if (this.#includeUsage) out += this.#chunk([], { usage: openAiUsageFrom(this.#usage) });
    return `${out}data: [DONE]\n\n`;
  }

  /** The error event openai-node throws as an APIError; it ends the stream. */
  fail(error: { type: string; message: string; code?: ErrorCode }): string {
    if (this.#done) return '';
    this.#done = true;
    return `data: ${openAiErrorBody({ message: error.message, type: error.type, code: error.code ?? 'upstream_error' })}\n\n`;
  }

  #chunk(choices: Json[], extra: Json = {}): string {
    return `data: ${JSON.stringify({ id: this.#id, object: 'chat.completion.chunk', created: this.#created, model: this.#model, choices, ...extra })}\n\n`;
  }

  #delta(delta: Json, finishReason: string | null = null): string {
    return this.#chunk([{ index: 0, delta, logprobs: null, finish_reason: finishReason }]);
  }

  #role(): string {
    if (this.#started) return '';
    this.#started = true;
    return this.#delta({ role: 'assistant', content: '' });
  }

  #finish(stopReason: unknown): string {
    if (this.#finished) return '';
    this.#finished = true;
    return this.#delta({}, finishReasonFrom(stopReason));
  }

  #mergeUsage(usage: Json): void {
    for (const [key, value] of Object.entries(usage)) if (typeof value === 'number') this.#usage[key] = value;
  }

  #blockStart(event: Json): string {
    const block = isObject(event.content_block) ? event.content_block : {};
    if (block.type === 'text') return typeof block.text === 'string' && block.text !== '' ? this.#delta({ content: block.text }) : '';
    if (block.type !== 'tool_use') return '';
    if (typeof event.index !== 'number') return '';
    const index = this.#tools.size;
    this.#tools.set(event.index, index);
    // Streamed tool input starts as {} and comes in input_json_delta; a whole input is sent at once.
    const input = isObject(block.input) && Object.keys(block.input).length > 0 ? JSON.stringify(block.input) : '';
    return this.#delta({ tool_calls: [{ index, id: block.id, type: 'function', function: { name: block.name, arguments: input } }] });
  }

  #blockDelta(event: Json): string {
    const delta = isObject(event.delta) ? event.delta : {};
    if (delta.type === 'text_delta' && typeof delta.text === 'string' && delta.text !== '') return this.#delta({ content: delta.text });
    if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string' && delta.partial_json !== '') {
      const index = typeof event.index === 'number' ? this.#tools.get(event.index) : undefined;
      if (index !== undefined) return this.#delta({ tool_calls: [{ index, function: { arguments: delta.partial_json } }] });
    }
    // thinking_delta, signature_delta, citations_delta.
    return '';
  }
}
