// OpenAI chat completion (not streamed) → Anthropic message, for an Anthropic client served by an
// OpenAI-compatible upstream. In: https://platform.openai.com/docs/api-reference/chat/object; out:
// https://docs.anthropic.com/en/api/messages (the response). An answer that cannot be read is the
// upstream's fault: a GatewayError('upstream_error') (502).

import { GatewayError } from '../errors/index.js';
import { usageFromObject } from '../streaming/usage.js';
import { isObject, type Json } from './json.js';
import { anthropicUsageFrom, messageIdFrom, stopReasonFrom, toolUseId } from './response-fields.js';

/**
 * The answer as an Anthropic message: text, then one tool_use block per tool call. Empty text
 * gives no block (Anthropic answers `content: []` when there is nothing). Reasoning text some
 * upstreams add (`reasoning_content`) is left out, as OpenAI itself never returns reasoning.
 */
export function chatCompletionToMessage(chat: Record<string, unknown>, model: string): Record<string, unknown> {
  const choice = Array.isArray(chat.choices) ? chat.choices[0] : undefined;
  if (!isObject(choice) || !isObject(choice.message)) throw unusable('it has no choices[0].message');
  const message = choice.message;
  const content: Json[] = [];
  const text = textOf(message.content);
  if (text !== '') content.push({ type: 'text', text });
  const refused = typeof message.refusal === 'string' && message.refusal !== '';
  if (refused) content.push({ type: 'text', text: message.refusal });
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  calls.forEach((call, i) => content.push(toolUse(call, `choices[0].message.tool_calls[${i}]`)));
  // The deprecated single `function_call`, from upstreams that still answer with it.
  if (isObject(message.function_call)) content.push(toolUse({ type: 'function', function: message.function_call }, 'choices[0].message.function_call'));
  const sawToolCalls = content.some((block) => block.type === 'tool_use');
  return {
    id: messageIdFrom(chat.id),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReasonFrom(choice.finish_reason, sawToolCalls, refused),
    stop_sequence: null,
    usage: anthropicUsageFrom(usageFromObject(chat)),
  };
}

function unusable(why: string): GatewayError {
  return new GatewayError('upstream_error', `The upstream's chat completion cannot be translated: ${why}.`);
}

/** `content` as a string, or as text parts (some compatible upstreams answer with parts). */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (isObject(part) && typeof part.text === 'string' ? part.text : '')).join('');
}

function toolUse(call: unknown, path: string): Json {
  if (!isObject(call) || !isObject(call.function)) throw unusable(`${path} is not a function call`);
  const name = call.function.name;
  if (typeof name !== 'string' || name === '') throw unusable(`${path} has no function name`);
  const id = typeof call.id === 'string' && call.id !== '' ? call.id : toolUseId();
  return { type: 'tool_use', id, name, input: toolInput(call.function.arguments, `${path}.function.arguments`) };
}

/** Tool arguments as Anthropic's `input` object; no arguments at all (some upstreams send "") is `{}`. */
function toolInput(args: unknown, path: string): Json {
  if (args === undefined || args === null || args === '') return {};
  let parsed: unknown = args;
  if (typeof args === 'string') {
    try {
      parsed = JSON.parse(args);
    } catch {
      throw unusable(`${path} is not valid JSON`);
    }
  }
  if (!isObject(parsed)) throw unusable(`${path} is not a JSON object`);
  return parsed;
}
