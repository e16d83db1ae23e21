// The fields both answer directions map between Anthropic's Messages API
// (https://docs.anthropic.com/en/api/messages) and OpenAI's chat completions
// (https://platform.openai.com/docs/api-reference/chat/object): ids, stop/finish reasons, usage.

import { randomUUID } from 'node:crypto';
import type { Usage } from '../streaming/usage.js';
import { tokenCount, type Json } from './json.js';

/** `chatcmpl-abc` → `msg_abc`: the same answer recognisable in both logs. */
export function messageIdFrom(chatId: unknown): string {
  return typeof chatId === 'string' && chatId !== '' ? `msg_${chatId.replace(/^chatcmpl-/, '')}` : `msg_${randomUUID().replaceAll('-', '')}`;
}

/** `msg_abc` → `chatcmpl-abc`. */
export function chatIdFrom(messageId: unknown): string {
  return typeof messageId === 'string' && messageId !== '' ? `chatcmpl-${messageId.replace(/^msg_/, '')}` : `chatcmpl-${randomUUID().replaceAll('-', '')}`;
}

/** An id for a tool call the upstream sent without one. */
export function toolUseId(): string {
  return `toolu_${randomUUID().replaceAll('-', '')}`;
}

/**
 * OpenAI `finish_reason` → Anthropic `stop_reason`. OpenAI does not say whether a stop sequence
 * ended the answer, so `stop` is always `end_turn`. Some compatible upstreams answer `stop` (or
 * nothing) after tool calls: the calls decide, since Anthropic clients run tools on `tool_use`.
 */
export function stopReasonFrom(finishReason: unknown, sawToolCalls: boolean, refused: boolean): string {
  if (refused || finishReason === 'content_filter') return 'refusal';
  if (finishReason === 'length') return 'max_tokens';
  if (finishReason === 'tool_calls' || finishReason === 'function_call' || sawToolCalls) return 'tool_use';
  return 'end_turn';
}

/**
 * Anthropic `stop_reason` → OpenAI `finish_reason`. `pause_turn` only follows Anthropic server
 * tools, which the request translation refuses; it reads as `stop`, as does an unknown reason.
 * `model_context_window_exceeded` is a length stop.
 */
export function finishReasonFrom(stopReason: unknown): string {
  switch (stopReason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'stop';
  }
}

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
}

/**
 * OpenAI usage → Anthropic's: Anthropic's `input_tokens` excludes cache reads, OpenAI's
 * `prompt_tokens` includes them. OpenAI upstreams write no cache (it is automatic and free), so
 * `cache_creation_input_tokens` is 0.
 */
export function anthropicUsageFrom(usage: Usage | undefined): AnthropicUsage {
  const prompt = usage?.promptTokens ?? 0;
  const cached = Math.min(usage?.cachedTokens ?? 0, prompt);
  return { input_tokens: prompt - cached, output_tokens: usage?.completionTokens ?? 0, cache_read_input_tokens: cached, cache_creation_input_tokens: 0 };
}

/** Anthropic usage (a message's, or message_start's merged with message_delta's) → OpenAI's. */
export function openAiUsageFrom(usage: Json): Json {
  const read = tokenCount(usage.cache_read_input_tokens);
  const prompt = tokenCount(usage.input_tokens) + read + tokenCount(usage.cache_creation_input_tokens);
  const completion = tokenCount(usage.output_tokens);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: read } };
}
