// Anthropic Messages request → OpenAI chat completions request, for a model an OpenAI-compatible
// upstream serves. In: https://docs.anthropic.com/en/api/messages; out:
// https://platform.openai.com/docs/api-reference/chat/create. The body is untrusted JSON: every
// part is checked as it is read, and what cannot be carried over is refused with a 400 naming its
// path. Nothing else is left out but SAFE_TO_DROP.

import {
  arrayAt,
  booleanAt,
  child,
  integerAt,
  invalid,
  isObject,
  isSet,
  numberAt,
  objectAt,
  onlyKnownKeys,
  stringAt,
  type Json,
} from './json.js';

const UPSTREAM = 'an OpenAI-compatible upstream';

export interface MessagesToChatOptions {
  /** The served model name, put in the body. */
  model: string;
  stream: boolean;
  /** Ask for the final usage chunk (`stream_options.include_usage`) when streaming. */
  includeUsage: boolean;
  /** The upstream model takes `reasoning_effort` (and `max_completion_tokens`). */
  reasoning: boolean;
}

/** Fields of an Anthropic request this translation leaves out on purpose, and why. */
export const SAFE_TO_DROP: readonly string[] = [
  // Prompt-caching hints on system, message and tool blocks: OpenAI caches prompt prefixes by
  // itself; the content they mark is sent.
  'cache_control',
  // Claude Code puts a JSON string of device, account and session ids in `metadata.user_id`.
  // OpenAI's `user` is deprecated and only an abuse-detection hint; the gateway knows the caller
  // by its key, and those ids are not the owner's to hand to a third party.
  'metadata',
  // Server-side context editing (clearing old tool results or thinking once the context grows):
  // without it the upstream reads the whole history the client sent, which is what it asked for.
  'context_management',
  // Anthropic's capacity choice ("auto" | "standard_only"); OpenAI's `service_tier` is a
  // different, differently billed choice.
  'service_tier',
  // Beta opt-ins; every field they would enable is checked on its own.
  'betas',
  // Extended thinking and `output_config.effort`, when the upstream model takes no reasoning
  // setting (with one they become `reasoning_effort`); `thinking.display` in every case.
  'thinking',
  'output_config.effort',
  // Thinking and redacted_thinking blocks of earlier assistant turns: signed reasoning only an
  // Anthropic model can read back; OpenAI does not take earlier reasoning in chat history either.
  'messages[].content[type=thinking|redacted_thinking]',
  // Citations on text blocks of earlier turns: source references; the text itself is sent.
  'citations',
  // Deferred loading for Anthropic's tool search: without tool search every tool is loaded.
  'tools[].defer_loading',
  // `strict: false` is OpenAI's default too.
  'tools[].strict (false)',
  // Claude Code sends `tools: []` when tools are off; OpenAI upstreams refuse an empty list, and
  // with nothing to choose from, `tool_choice` (and parallel use) means nothing.
  'tools (empty)',
  'tool_choice (without tools)',
];

/** Put before a tool result's text when `is_error` is true: OpenAI tool messages have no flag. */
export const TOOL_ERROR_PREFIX = 'Error: ';

const TOP_LEVEL = new Set([
  'model', 'messages', 'max_tokens', 'system', 'stream', 'temperature', 'top_p', 'top_k', 'stop_sequences', 'tools', 'tool_choice',
  'metadata', 'thinking', 'output_config', 'context_management', 'service_tier', 'betas', 'container', 'mcp_servers',
]);
/** Known fields OpenAI has no counterpart for. */
const REFUSED: Readonly<Record<string, string>> = {
  top_k: 'OpenAI has no top-k sampling',
  container: 'containers belong to Anthropic-run tools',
  mcp_servers: 'MCP servers are called by Anthropic itself',
};
const TEXT_KEYS = new Set(['type', 'text', 'cache_control', 'citations']);
const IMAGE_KEYS = new Set(['type', 'source', 'cache_control']);
const TOOL_RESULT_KEYS = new Set(['type', 'tool_use_id', 'content', 'is_error', 'cache_control']);
const TOOL_USE_KEYS = new Set(['type', 'id', 'name', 'input', 'cache_control']);
const TOOL_KEYS = new Set(['type', 'name', 'description', 'input_schema', 'cache_control', 'defer_loading', 'strict']);
const TOOL_CHOICE_KEYS = new Set(['type', 'name', 'disable_parallel_tool_use']);
const THINKING_KEYS = new Set(['type', 'budget_tokens', 'display']);
const OUTPUT_CONFIG_KEYS = new Set(['effort', 'format']);
const MESSAGE_KEYS = new Set(['role', 'content']);
/** Anthropic effort → OpenAI `reasoning_effort`; "max" is not taken by every upstream, "high" is. */
const EFFORTS: Readonly<Record<string, string>> = { low: 'low', medium: 'medium', high: 'high', xhigh: 'high', max: 'high' };

/**
 * Translates an Anthropic Messages request into a chat completions request for `options.model`.
 * Throws a GatewayError (400, `param` = the path) for anything that cannot be translated.
 */
export function messagesToChatRequest(body: Record<string, unknown>, options: MessagesToChatOptions): Record<string, unknown> {
  for (const key of Object.keys(body)) {
    if (!TOP_LEVEL.has(key)) throw invalid(key, `Parameter "${key}" cannot be sent to ${UPSTREAM}.`);
    const why = REFUSED[key];
    if (why !== undefined && isSet(body[key])) throw invalid(key, `Parameter "${key}" cannot be sent to ${UPSTREAM}: ${why}.`);
  }
  const messages: Json[] = [];
  if (isSet(body.system)) messages.push({ role: 'system', content: systemText(body.system, 'system') });
  const input = arrayAt(body.messages, 'messages');
  input.forEach((message, i) => translateMessage(message, `messages[${i}]`, messages));
  const last = input[input.length - 1];
  if (isObject(last) && last.role === 'assistant' && messages[messages.length - 1]?.role === 'assistant') {
    throw invalid(
      `messages[${input.length - 1}]`,
      `A final assistant message (a prefill the answer continues) cannot be sent to ${UPSTREAM}: it would answer anew instead of continuing it.`,
    );
  }

  const out: Json = { model: options.model, messages };
  if (isSet(body.max_tokens)) out[options.reasoning ? 'max_completion_tokens' : 'max_tokens'] = integerAt(body.max_tokens, 'max_tokens', 1);
  if (isSet(body.temperature)) out.temperature = numberAt(body.temperature, 'temperature');
  if (isSet(body.top_p)) out.top_p = numberAt(body.top_p, 'top_p');
  if (isSet(body.stop_sequences)) {
    const stop = arrayAt(body.stop_sequences, 'stop_sequences').map((s, i) => stringAt(s, `stop_sequences[${i}]`));
    if (stop.length > 0) out.stop = stop;
  }
  if (isSet(body.stream)) booleanAt(body.stream, 'stream');
  addTools(body, out);
  const effort = reasoningEffort(body);
  if (options.reasoning && effort !== undefined) out.reasoning_effort = effort;
  const format = responseFormat(body);
  if (format !== undefined) out.response_format = format;
  if (options.stream) {
    out.stream = true;
    if (options.includeUsage) out.stream_options = { include_usage: true };
  }
  return out;
}

function blockAt(value: unknown, path: string): { block: Json; type: string } {
  const block = objectAt(value, path);
  return { block, type: stringAt(block.type, `${path}.type`) };
}

function refuseBlock(type: string, path: string, where = ''): never {
  throw invalid(`${path}.type`, `Content block type "${type}"${where} cannot be sent to ${UPSTREAM}.`);
}

function textOf(block: Json, path: string): string {
  onlyKnownKeys(block, TEXT_KEYS, path, UPSTREAM);
  return stringAt(block.text, `${path}.text`);
}

/** `system` (top-level or a system message's content): a string, or text blocks joined by a blank line. */
function systemText(value: unknown, path: string): string {
  if (typeof value === 'string') return value;
  return arrayAt(value, path)
    .map((item, i) => {
      const { block, type } = blockAt(item, `${path}[${i}]`);
      if (type !== 'text') refuseBlock(type, `${path}[${i}]`);
      return textOf(block, `${path}[${i}]`);
    })
    .join('\n\n');
}

function translateMessage(value: unknown, path: string, out: Json[]): void {
  const message = objectAt(value, path);
  onlyKnownKeys(message, MESSAGE_KEYS, path, UPSTREAM);
  const role = stringAt(message.role, `${path}.role`);
  const contentPath = `${path}.content`;
  switch (role) {
    case 'user':
      userMessage(message.content, contentPath, out);
      return;
    case 'assistant':
      assistantMessage(message.content, contentPath, out);
      return;
    // Claude Code sends one inside `messages` for non-Claude model names: kept at its place.
    case 'system':
      out.push({ role: 'system', content: systemText(message.content, contentPath) });
      return;
    default:
      throw invalid(`${path}.role`, `Role "${role}" (${path}.role) must be "user" or "assistant".`);
  }
}

/**
 * A user turn: its tool results become `tool` messages, first — OpenAI wants them right after the
 * assistant's tool calls — then the rest as one user message. Text alone is one string (some
 * compatible servers take only strings); with images, content parts.
 */
function userMessage(content: unknown, path: string, out: Json[]): void {
  if (typeof content === 'string') {
    out.push({ role: 'user', content });
    return;
  }
  const parts: Json[] = [];
  const tools: Json[] = [];
  arrayAt(content, path).forEach((item, i) => {
    const at = `${path}[${i}]`;
    const { block, type } = blockAt(item, at);
    if (type === 'text') parts.push({ type: 'text', text: textOf(block, at) });
    else if (type === 'image') parts.push({ type: 'image_url', image_url: { url: imageUrl(block, at) } });
    else if (type === 'tool_result') tools.push(toolMessage(block, at));
    else refuseBlock(type, at);
  });
  out.push(...tools);
  if (parts.length > 0 || tools.length === 0) {
    const textOnly = parts.every((part) => part.type === 'text');
    out.push({ role: 'user', content: textOnly ? parts.map((part) => part.text).join('\n\n') : parts });
  }
}

function imageUrl(block: Json, path: string): string {
  onlyKnownKeys(block, IMAGE_KEYS, path, UPSTREAM);
  const source = objectAt(block.source, `${path}.source`);
  const kind = stringAt(source.type, `${path}.source.type`);
  if (kind === 'base64') {
    const mediaType = stringAt(source.media_type, `${path}.source.media_type`);
    return `data:${mediaType};base64,${stringAt(source.data, `${path}.source.data`)}`;
  }
  if (kind === 'url') return stringAt(source.url, `${path}.source.url`);
  throw invalid(`${path}.source.type`, `Image source type "${kind}" cannot be sent to ${UPSTREAM}.`);
}

function toolMessage(block: Json, path: string): Json {
  onlyKnownKeys(block, TOOL_RESULT_KEYS, path, UPSTREAM);
  const id = stringAt(block.tool_use_id, `${path}.tool_use_id`);
  let text = '';
  if (typeof block.content === 'string') {
    text = block.content;
  } else if (isSet(block.content)) {
    const contentPath = `${path}.content`;
    text = arrayAt(block.content, contentPath)
      .map((item, i) => {
        const at = `${contentPath}[${i}]`;
        const inner = blockAt(item, at);
        if (inner.type !== 'text') refuseBlock(inner.type, at, ' inside a tool_result');
        return textOf(inner.block, at);
      })
      .join('\n\n');
  }
  const isError = isSet(block.is_error) && booleanAt(block.is_error, `${path}.is_error`);
  return { role: 'tool', tool_call_id: id, content: isError ? TOOL_ERROR_PREFIX + text : text };
}

/** An assistant turn: its text (blocks joined by a blank line) and tool calls; thinking is left out. */
function assistantMessage(content: unknown, path: string, out: Json[]): void {
  if (typeof content === 'string') {
    out.push({ role: 'assistant', content });
    return;
  }
  const texts: string[] = [];
  const calls: Json[] = [];
  arrayAt(content, path).forEach((item, i) => {
    const at = `${path}[${i}]`;
    const { block, type } = blockAt(item, at);
    if (type === 'text') texts.push(textOf(block, at));
    else if (type === 'tool_use') calls.push(toolCall(block, at));
    else if (type !== 'thinking' && type !== 'redacted_thinking') refuseBlock(type, at);
  });
  if (texts.length === 0 && calls.length === 0) return;
  const message: Json = { role: 'assistant', content: texts.length > 0 ? texts.join('\n\n') : null };
  if (calls.length > 0) message.tool_calls = calls;
  out.push(message);
}

function toolCall(block: Json, path: string): Json {
  onlyKnownKeys(block, TOOL_USE_KEYS, path, UPSTREAM);
  const id = stringAt(block.id, `${path}.id`);
  const name = stringAt(block.name, `${path}.name`);
  const input = objectAt(block.input, `${path}.input`);
  return { id, type: 'function', function: { name, arguments: JSON.stringify(input) } };
}

function addTools(body: Json, out: Json): void {
  const tools = isSet(body.tools) ? arrayAt(body.tools, 'tools').map((tool, i) => functionTool(tool, `tools[${i}]`)) : [];
  const choice = isSet(body.tool_choice) ? objectAt(body.tool_choice, 'tool_choice') : undefined;
  if (choice !== undefined) onlyKnownKeys(choice, TOOL_CHOICE_KEYS, 'tool_choice', UPSTREAM);
  const mapped = choice === undefined ? undefined : toolChoice(choice);
  const serial = choice !== undefined && isSet(choice.disable_parallel_tool_use) && booleanAt(choice.disable_parallel_tool_use, 'tool_choice.disable_parallel_tool_use');
  if (tools.length === 0) return;
  out.tools = tools;
  if (mapped !== undefined) out.tool_choice = mapped;
  if (serial) out.parallel_tool_calls = false;
}

function functionTool(value: unknown, path: string): Json {
  const tool = objectAt(value, path);
  if (isSet(tool.type)) {
    const type = stringAt(tool.type, `${path}.type`);
    if (type !== 'custom') throw invalid(`${path}.type`, `Tool type "${type}" is an Anthropic server tool; it cannot be sent to ${UPSTREAM}.`);
  }
  onlyKnownKeys(tool, TOOL_KEYS, path, UPSTREAM);
  const fn: Json = { name: stringAt(tool.name, `${path}.name`) };
  if (isSet(tool.description)) fn.description = stringAt(tool.description, `${path}.description`);
  // The schema goes as it is ($schema, $defs and all): OpenAI reads JSON Schema too.
  fn.parameters = objectAt(tool.input_schema, `${path}.input_schema`);
  if (isSet(tool.strict) && booleanAt(tool.strict, `${path}.strict`)) fn.strict = true;
  if (isSet(tool.defer_loading)) booleanAt(tool.defer_loading, `${path}.defer_loading`);
  return { type: 'function', function: fn };
}

function toolChoice(choice: Json): unknown {
  const type = stringAt(choice.type, 'tool_choice.type');
  switch (type) {
    case 'auto':
      return 'auto';
    case 'any':
      return 'required';
    case 'none':
      return 'none';
    case 'tool':
      return { type: 'function', function: { name: stringAt(choice.name, 'tool_choice.name') } };
    default:
      throw invalid('tool_choice.type', `tool_choice type "${type}" cannot be sent to ${UPSTREAM}.`);
  }
}

/**
 * `thinking` and `output_config.effort` → `reasoning_effort`, checked even when unused. An
 * explicit effort wins; else a thinking budget maps low < 4096 ≤ medium < 16384 ≤ high; disabled
 * thinking or adaptive thinking without an effort leave the upstream's default.
 */
function reasoningEffort(body: Json): string | undefined {
  let type: string | undefined;
  let budget: number | undefined;
  if (isSet(body.thinking)) {
    const thinking = objectAt(body.thinking, 'thinking');
    onlyKnownKeys(thinking, THINKING_KEYS, 'thinking', UPSTREAM);
    type = stringAt(thinking.type, 'thinking.type');
    if (type !== 'enabled' && type !== 'disabled' && type !== 'adaptive') throw invalid('thinking.type', `thinking type "${type}" cannot be sent to ${UPSTREAM}.`);
    if (type === 'enabled') budget = integerAt(thinking.budget_tokens, 'thinking.budget_tokens', 1);
  }
  const config = outputConfig(body);
  let effort: string | undefined;
  if (config !== undefined && isSet(config.effort)) {
    const value = stringAt(config.effort, 'output_config.effort');
    effort = EFFORTS[value];
    if (effort === undefined) throw invalid('output_config.effort', `output_config.effort "${value}" cannot be sent to ${UPSTREAM}.`);
  }
  if (type === 'disabled') return undefined;
  if (effort !== undefined) return effort;
  if (budget === undefined) return undefined;
  return budget < 4096 ? 'low' : budget < 16384 ? 'medium' : 'high';
}

function outputConfig(body: Json): Json | undefined {
  if (!isSet(body.output_config)) return undefined;
  const config = objectAt(body.output_config, 'output_config');
  onlyKnownKeys(config, OUTPUT_CONFIG_KEYS, 'output_config', UPSTREAM);
  return config;
}

/** Structured output (`output_config.format`, a JSON schema) → OpenAI's strict `json_schema`. */
function responseFormat(body: Json): Json | undefined {
  const config = outputConfig(body);
  if (config === undefined || !isSet(config.format)) return undefined;
  const format = objectAt(config.format, 'output_config.format');
  const path = child('output_config.format', 'type');
  const type = stringAt(format.type, path);
  if (type !== 'json_schema') throw invalid(path, `output_config.format type "${type}" cannot be sent to ${UPSTREAM}.`);
  onlyKnownKeys(format, new Set(['type', 'schema']), 'output_config.format', UPSTREAM);
  return { type: 'json_schema', json_schema: { name: 'response', schema: objectAt(format.schema, 'output_config.format.schema'), strict: true } };
}
