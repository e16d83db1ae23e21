// OpenAI chat completion stream → Anthropic Messages SSE, chunk by chunk, nothing held back.
// In: https://platform.openai.com/docs/api-reference/chat-streaming; out:
// https://docs.anthropic.com/en/api/messages-streaming. Every event is `event: <type>` with a
// `data` whose `type` is the same name: Claude Code requires that.
//
// Blocks are sequential, as Anthropic sends them: a block starts when the previous one stops.
// An upstream that goes back to an earlier tool call's arguments after another block started
// cannot be followed without holding events back; the stream ends with an error event then.
// Reasoning text some upstreams stream (`reasoning_content`) is left out, as in the answer
// translation (chat-to-messages-response.ts).

import { usageFromObject, type Usage } from '../streaming/usage.js';
import { isObject, type Json } from './json.js';
import { anthropicUsageFrom, messageIdFrom, stopReasonFrom, toolUseId, type AnthropicUsage } from './response-fields.js';

/** One Anthropic SSE event; `data.type` repeats the event name. */
export function anthropicEvent(type: string, data: Json): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

interface OpenBlock {
  index: number;
  kind: 'text' | 'tool_use';
}

export class ChatToMessagesStream {
  readonly #model: string;
  #started = false;
  #done = false;
  #open: OpenBlock | undefined;
  #blocks = 0;
  /** OpenAI `tool_calls[].index` → Anthropic content block index. */
  readonly #tools = new Map<number, number>();
  #finishReason: unknown;
  #refused = false;
  #usage: Usage | undefined;

  constructor(model: string) {
    this.#model = model;
  }

  /** The usage the closing `message_delta` reports (or will), once the upstream sent one. */
  get usage(): AnthropicUsage | undefined {
    return this.#usage === undefined ? undefined : anthropicUsageFrom(this.#usage);
  }

  /** One parsed `data:` chunk of the upstream → the Anthropic events to write now (maybe ''). */
  push(chunk: Record<string, unknown>): string {
    if (this.#done) return '';
    // Some compatible upstreams report a failure inside the stream.
    if (isObject(chunk.error)) {
      const message = typeof chunk.error.message === 'string' ? chunk.error.message : 'The upstream failed mid-stream.';
      return this.fail({ type: 'api_error', message });
    }
    let out = this.#start(chunk);
    this.#usage = usageFromObject(chunk) ?? this.#usage;
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (!isObject(choice)) return out;
    const delta = isObject(choice.delta) ? choice.delta : {};
    if (typeof delta.content === 'string' && delta.content !== '') out += this.#text(delta.content);
    if (typeof delta.refusal === 'string' && delta.refusal !== '') {
      this.#refused = true;
      out += this.#text(delta.refusal);
    }
    if (Array.isArray(delta.tool_calls)) {
      for (const call of delta.tool_calls) {
        out += this.#toolCall(call);
        if (this.#done) return out;
      }
    }
    if (typeof choice.finish_reason === 'string') this.#finishReason = choice.finish_reason;
    return out;
  }

  /** The upstream's stream ended (`[DONE]` or its end): close the open block and the message. */
  finish(): string {
    if (this.#done) return '';
    let out = this.#start({});
    out += this.#close();
    this.#done = true;
    const stopReason = stopReasonFrom(this.#finishReason, this.#tools.size > 0, this.#refused);
    out += anthropicEvent('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: anthropicUsageFrom(this.#usage) });
    return out + anthropicEvent('message_stop', {});
  }

  /** Anthropic's error event, which ends the stream (the SDKs throw it as an APIError). */
  fail(error: { type: string; message: string }): string {
    if (this.#done) return '';
    this.#done = true;
    return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: error.type, message: error.message } })}\n\n`;
  }

  #start(chunk: Json): string {
    if (this.#started) return '';
    this.#started = true;
    const message = {
      id: messageIdFrom(chunk.id),
      type: 'message',
      role: 'assistant',
      model: this.#model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // OpenAI reports usage only at the end: the real numbers come in message_delta.
      usage: { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
    };
    return anthropicEvent('message_start', { message }) + anthropicEvent('ping', {});
  }

  #close(): string {
    if (this.#open === undefined) return '';
    const index = this.#open.index;
    this.#open = undefined;
    return anthropicEvent('content_block_stop', { index });
  }

  #begin(kind: OpenBlock['kind'], contentBlock: Json): string {
    const out = this.#close();
    const index = this.#blocks++;
    this.#open = { index, kind };
    return out + anthropicEvent('content_block_start', { index, content_block: contentBlock });
  }

  #text(text: string): string {
    let out = '';
    if (this.#open?.kind !== 'text') out += this.#begin('text', { type: 'text', text: '' });
    return out + anthropicEvent('content_block_delta', { index: this.#open!.index, delta: { type: 'text_delta', text } });
  }

  #toolCall(call: unknown): string {
    if (!isObject(call)) return '';
    const fn = isObject(call.function) ? call.function : {};
    // `index` is required by OpenAI; an upstream without it sends one whole call per entry.
    const key = typeof call.index === 'number' ? call.index : typeof call.id === 'string' ? this.#tools.size : this.#tools.size - 1;
    let out = '';
    let index = this.#tools.get(key);
    if (index === undefined) {
      if (typeof fn.name !== 'string' || fn.name === '') return this.fail({ type: 'api_error', message: 'The upstream started a tool call without a function name.' });
      const id = typeof call.id === 'string' && call.id !== '' ? call.id : toolUseId();
      out += this.#begin('tool_use', { type: 'tool_use', id, name: fn.name, input: {} });
      index = this.#open!.index;
      this.#tools.set(key, index);
    }
    const args = fn.arguments;
    if (typeof args !== 'string' || args === '') return out;
    if (this.#open?.index !== index) {
      return out + this.fail({ type: 'api_error', message: 'The upstream went back to an earlier tool call after another block started; the stream cannot be translated.' });
    }
    return out + anthropicEvent('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: args } });
  }
}
