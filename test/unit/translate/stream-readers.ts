// Test helpers: read translated streams back the way clients do — through the gateway's own SSE
// decoder, then accumulated as the Anthropic SDK's MessageStream and openai-node's chat stream
// helpers accumulate them.

import assert from 'node:assert/strict';
import { SseDecoder } from '../../../src/streaming/sse-decoder.js';

export type Json = Record<string, unknown>;

/** Anthropic SSE text → its events' data, checking each `event:` name equals `data.type`. */
export function anthropicEvents(text: string): Json[] {
  const decoder = new SseDecoder();
  const events = [...decoder.push(Buffer.from(text)), ...decoder.end()];
  return events.map((event) => {
    const data = JSON.parse(event.data) as Json;
    assert.equal(event.event, data.type, `event name ${event.event} matches data.type ${String(data.type)}`);
    return data;
  });
}

/** OpenAI chat SSE text → the chunks (no event names) and whether `[DONE]` ended it. */
export function chatChunks(text: string): { chunks: Json[]; done: boolean } {
  const decoder = new SseDecoder();
  const events = [...decoder.push(Buffer.from(text)), ...decoder.end()];
  const chunks: Json[] = [];
  let done = false;
  for (const event of events) {
    assert.equal(event.event, undefined);
    assert.equal(done, false, 'nothing after [DONE]');
    if (event.data === '[DONE]') done = true;
    else chunks.push(JSON.parse(event.data) as Json);
  }
  return { chunks, done };
}

export interface AccumulatedMessage {
  id: string;
  content: Json[];
  stopReason: unknown;
  usage: Json;
}

/**
 * Anthropic events → the final message, as the SDK's MessageStream builds it: blocks by index,
 * text appended, tool input from the joined `partial_json` (parsed at the end). Checks the event
 * order clients rely on: message_start first, a block's deltas between its start and stop,
 * message_stop last.
 */
export function accumulateMessage(events: Json[]): AccumulatedMessage {
  assert.equal(events[0]?.type, 'message_start');
  assert.equal(events[events.length - 1]?.type, 'message_stop');
  const start = events[0]!.message as Json;
  const content: Json[] = [];
  const json: string[] = [];
  const open = new Set<number>();
  let stopReason: unknown = null;
  let usage = { ...(start.usage as Json) };
  for (const event of events.slice(1, -1)) {
    const index = event.index as number;
    switch (event.type) {
      case 'content_block_start':
        assert.equal(content.length, index, 'blocks start in order');
        assert.equal(open.size, 0, 'one block open at a time');
        content.push({ ...(event.content_block as Json) });
        json.push('');
        open.add(index);
        break;
      case 'content_block_delta': {
        assert.ok(open.has(index), `delta for open block ${index}`);
        const delta = event.delta as Json;
        const block = content[index]!;
        if (delta.type === 'text_delta') block.text = `${block.text as string}${delta.text as string}`;
        else if (delta.type === 'input_json_delta') json[index] += delta.partial_json as string;
        else assert.fail(`unexpected delta ${String(delta.type)}`);
        break;
      }
      case 'content_block_stop':
        assert.ok(open.delete(index), `stop for open block ${index}`);
        if (content[index]!.type === 'tool_use') content[index]!.input = json[index] === '' ? {} : JSON.parse(json[index]!);
        break;
      case 'message_delta':
        assert.equal(open.size, 0, 'blocks closed before message_delta');
        stopReason = (event.delta as Json).stop_reason;
        usage = { ...usage, ...(event.usage as Json) };
        break;
      case 'ping':
        break;
      default:
        assert.fail(`unexpected event ${String(event.type)}`);
    }
  }
  return { id: start.id as string, content, stopReason, usage };
}

export interface AccumulatedChat {
  content: string;
  toolCalls: { id: string; name: string; arguments: string }[];
  finishReason: unknown;
  usage: Json | undefined;
}

/** OpenAI chunks → the final message, as openai-node's ChatCompletionStream builds it. */
export function accumulateChat(chunks: Json[]): AccumulatedChat {
  let content = '';
  const toolCalls: AccumulatedChat['toolCalls'] = [];
  let finishReason: unknown = null;
  let usage: Json | undefined;
  for (const chunk of chunks) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage !== undefined && chunk.usage !== null) usage = chunk.usage as Json;
    const choice = (chunk.choices as Json[])[0];
    if (choice === undefined) continue;
    const delta = choice.delta as Json;
    if (typeof delta.content === 'string') content += delta.content;
    for (const call of (delta.tool_calls as Json[] | undefined) ?? []) {
      const index = call.index as number;
      const fn = call.function as Json;
      if (toolCalls[index] === undefined) {
        assert.equal(index, toolCalls.length, 'tool calls start in order');
        toolCalls[index] = { id: call.id as string, name: fn.name as string, arguments: '' };
      }
      toolCalls[index].arguments += (fn.arguments as string | undefined) ?? '';
    }
    if (choice.finish_reason !== null) finishReason = choice.finish_reason;
  }
  return { content, toolCalls, finishReason, usage };
}

/** An OpenAI stream chunk with one choice. */
export function chatChunk(delta: Json, finishReason: string | null = null, id = 'chatcmpl-7'): Json {
  return { id, object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] };
}
