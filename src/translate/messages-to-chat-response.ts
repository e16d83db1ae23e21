// Anthropic message (not streamed) → OpenAI chat completion, for an OpenAI client served by an
// Anthropic upstream. In: https://docs.anthropic.com/en/api/messages (the response); out:
// https://platform.openai.com/docs/api-reference/chat/object.

import { GatewayError } from '../errors/index.js';
import { isObject, type Json } from './json.js';
import { chatIdFrom, finishReasonFrom, openAiUsageFrom } from './response-fields.js';

/**
 * Text blocks joined (Anthropic splits one answer's text at citations), tool_use blocks as
 * `tool_calls`. Thinking is left out: OpenAI's chat completions never return reasoning, so no
 * OpenAI client reads it. Any other block type can only answer a server tool the request
 * translation refused: the answer is the upstream's fault then (502).
 */
export function messageToChatCompletion(message: Record<string, unknown>, model: string): Record<string, unknown> {
  if (!Array.isArray(message.content)) throw unusable('it has no content array');
  const texts: string[] = [];
  const toolCalls: Json[] = [];
  (message.content as unknown[]).forEach((item, i) => {
    const block = isObject(item) ? item : {};
    if (block.type === 'text' && typeof block.text === 'string') texts.push(block.text);
    else if (block.type === 'tool_use') toolCalls.push(toolCall(block, i));
    else if (block.type !== 'thinking' && block.type !== 'redacted_thinking') throw unusable(`content[${i}] is a block of type ${JSON.stringify(block.type)}`);
  });
  const reply: Json = { role: 'assistant', content: texts.length > 0 || toolCalls.length === 0 ? texts.join('') : null, refusal: null };
  if (toolCalls.length > 0) reply.tool_calls = toolCalls;
  return {
    id: chatIdFrom(message.id),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: reply, logprobs: null, finish_reason: finishReasonFrom(message.stop_reason) }],
    usage: openAiUsageFrom(isObject(message.usage) ? message.usage : {}),
  };
}

function unusable(why: string): GatewayError {
  return new GatewayError('upstream_error', `The upstream's message cannot be translated: ${why}.`);
}

function toolCall(block: Json, i: number): Json {
  if (typeof block.id !== 'string' || typeof block.name !== 'string') throw unusable(`content[${i}] is a tool_use block without id or name`);
  return { id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(isObject(block.input) ? block.input : {}) } };
}
