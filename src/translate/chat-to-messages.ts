// OpenAI chat completions request → Anthropic Messages request, for a model an Anthropic upstream
// serves. In: https://platform.openai.com/docs/api-reference/chat/create; out:
// https://docs.anthropic.com/en/api/messages. The body is untrusted JSON: every part is checked
// as it is read, and what cannot be carried over is refused with a 400 naming its path. Nothing
// else is left out but SAFE_TO_DROP.

import {
  arrayAt,
  booleanAt,
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

const UPSTREAM = 'an Anthropic upstream';

export interface ChatToMessagesOptions {
  /** The served model name, put in the body. */
  model: string;
  stream: boolean;
}

/** Anthropic requires `max_tokens`; this is sent when the caller set neither token limit. */
export const DEFAULT_MAX_TOKENS = 4096;

/** `reasoning_effort` → `thinking.budget_tokens` (Anthropic's minimum budget is 1024). */
export const THINKING_BUDGETS: Readonly<Record<string, number>> = { minimal: 1024, low: 1024, medium: 4096, high: 16384, xhigh: 32768, max: 32768 };

/** Fields of an OpenAI request this translation leaves out on purpose, and why. */
export const SAFE_TO_DROP: readonly string[] = [
  // Anthropic streams usage in message_start and message_delta anyway; `include_usage` is the
  // stream translator's (MessagesToChatStream) to honour.
  'stream_options',
  // Stored completions and their tags are an OpenAI dashboard feature; Anthropic stores nothing.
  'store',
  'metadata',
  // Best-effort determinism on OpenAI only; Anthropic has no seed.
  'seed',
  // OpenAI's processing tier; Anthropic's `service_tier` is a different choice.
  'service_tier',
  // Prompt-cache routing hints; Anthropic caches by `cache_control`, which OpenAI callers cannot send.
  'prompt_cache_key',
  'prompt_cache_retention',
  // Values that ask for the default: the same as sending nothing.
  'frequency_penalty (0)',
  'presence_penalty (0)',
  'n (1)',
  'logprobs (false)',
  'logit_bias ({})',
  'parallel_tool_calls (true)',
  'response_format ({type: "text"})',
  'modalities (["text"])',
  'reasoning_effort ("none")',
  'tools[].function.strict (false)',
  // Participant names only tell speakers apart; Anthropic has no field for them.
  'messages[].name',
  // Anthropic picks the image resolution itself.
  'messages[].content[].image_url.detail',
  // Anthropic refuses empty text blocks, and they carry nothing (OpenAI clients send `content: ""`
  // beside tool calls); a message left with no content at all goes too.
  'empty text',
  // With no tools there is nothing to choose from.
  'tool_choice (without tools)',
  'parallel_tool_calls (without tools)',
];

const TOP_LEVEL = new Set([
  'model', 'messages', 'max_tokens', 'max_completion_tokens', 'stop', 'temperature', 'top_p', 'stream', 'stream_options', 'tools',
  'tool_choice', 'parallel_tool_calls', 'user', 'safety_identifier', 'store', 'metadata', 'seed', 'frequency_penalty',
  'presence_penalty', 'n', 'logprobs', 'top_logprobs', 'response_format', 'modalities', 'audio', 'reasoning_effort',
  'service_tier', 'prompt_cache_key', 'prompt_cache_retention', 'logit_bias', 'functions', 'function_call', 'prediction',
  'web_search_options', 'verbosity',
]);
/** Known fields Anthropic has no counterpart for, whatever their value. */
const REFUSED: Readonly<Record<string, string>> = {
  audio: 'Anthropic models do not speak',
  functions: 'use `tools`',
  function_call: 'use `tool_choice`',
  prediction: 'Anthropic has no predicted outputs',
  web_search_options: 'web search is an Anthropic server tool',
  verbosity: 'Anthropic has no verbosity setting',
  top_logprobs: 'Anthropic returns no log probabilities',
};
const TEXT_PART_KEYS = new Set(['type', 'text']);
const IMAGE_MEDIA_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
const MESSAGE_KEYS: Readonly<Record<string, ReadonlySet<string>>> = {
  system: new Set(['role', 'content', 'name']),
  developer: new Set(['role', 'content', 'name']),
  user: new Set(['role', 'content', 'name']),
  assistant: new Set(['role', 'content', 'name', 'tool_calls', 'refusal']),
  tool: new Set(['role', 'content', 'tool_call_id']),
};

interface Turn {
  role: 'user' | 'assistant';
  content: Json[];
}

/**
 * Translates a chat completions request into an Anthropic Messages request for `options.model`.
 * Throws a GatewayError (400, `param` = the path) for anything that cannot be translated.
 */
export function chatToMessagesRequest(body: Record<string, unknown>, options: ChatToMessagesOptions): Record<string, unknown> {
  for (const key of Object.keys(body)) {
    if (!TOP_LEVEL.has(key)) throw invalid(key, `Parameter "${key}" cannot be sent to ${UPSTREAM}.`);
    const why = REFUSED[key];
    if (why !== undefined && isSet(body[key])) throw invalid(key, `Parameter "${key}" cannot be sent to ${UPSTREAM}: ${why}.`);
  }
  refuseNonDefaults(body);

  const system: string[] = [];
  const turns: Turn[] = [];
  arrayAt(body.messages, 'messages').forEach((message, i) => translateMessage(message, `messages[${i}]`, system, turns));
  const out: Json = { model: options.model };
  // Anthropic has one top-level system prompt: system and developer messages go there, in order,
  // wherever they stood in the conversation.
  if (system.length > 0) out.system = system.join('\n\n');
  out.messages = turns.map(({ role, content }) => ({ role, content: content.length === 1 && isPlainText(content[0]!) ? content[0]!.text : content }));

  let maxTokens = DEFAULT_MAX_TOKENS;
  if (isSet(body.max_completion_tokens)) maxTokens = integerAt(body.max_completion_tokens, 'max_completion_tokens', 1);
  else if (isSet(body.max_tokens)) maxTokens = integerAt(body.max_tokens, 'max_tokens', 1);
  const budget = thinkingBudget(body);
  if (budget !== undefined) {
    out.thinking = { type: 'enabled', budget_tokens: budget };
    // Anthropic wants max_tokens above the budget. OpenAI counts reasoning inside its limit;
    // a limit that leaves no room for the budget is kept as the room for the answer instead.
    if (maxTokens <= budget) maxTokens += budget;
  }
  out.max_tokens = maxTokens;
  if (isSet(body.temperature)) {
    const temperature = numberAt(body.temperature, 'temperature');
    if (temperature < 0 || temperature > 1) throw invalid('temperature', `"temperature" must be between 0 and 1 for ${UPSTREAM} (it was ${temperature}).`);
    out.temperature = temperature;
  }
  if (isSet(body.top_p)) out.top_p = numberAt(body.top_p, 'top_p');
  if (typeof body.stop === 'string') out.stop_sequences = [body.stop];
  else if (isSet(body.stop)) {
    const stop = arrayAt(body.stop, 'stop').map((s, i) => stringAt(s, `stop[${i}]`));
    if (stop.length > 0) out.stop_sequences = stop;
  }
  addTools(body, out);
  const user = isSet(body.safety_identifier) ? stringAt(body.safety_identifier, 'safety_identifier') : isSet(body.user) ? stringAt(body.user, 'user') : undefined;
  if (user !== undefined && user !== '') out.metadata = { user_id: user };
  if (isSet(body.stream)) booleanAt(body.stream, 'stream');
  if (options.stream) out.stream = true;
  return out;
}

function isPlainText(block: Json): block is Json & { text: string } {
  return block.type === 'text' && Object.keys(block).length === 2;
}

/** Fields accepted only at their default value, which is what Anthropic does. */
function refuseNonDefaults(body: Json): void {
  for (const key of ['frequency_penalty', 'presence_penalty']) {
    if (isSet(body[key]) && numberAt(body[key], key) !== 0) throw invalid(key, `Parameter "${key}" cannot be sent to ${UPSTREAM}: Anthropic has no repetition penalties.`);
  }
  if (isSet(body.n) && integerAt(body.n, 'n', 1) !== 1) throw invalid('n', `Parameter "n" above 1 cannot be sent to ${UPSTREAM}: it answers one choice per request.`);
  if (isSet(body.logprobs) && booleanAt(body.logprobs, 'logprobs')) throw invalid('logprobs', `Parameter "logprobs" cannot be sent to ${UPSTREAM}: Anthropic returns no log probabilities.`);
  if (isSet(body.logit_bias) && Object.keys(objectAt(body.logit_bias, 'logit_bias')).length > 0) throw invalid('logit_bias', `Parameter "logit_bias" cannot be sent to ${UPSTREAM}: Anthropic has no token biases.`);
  if (isSet(body.response_format)) {
    const type = stringAt(objectAt(body.response_format, 'response_format').type, 'response_format.type');
    if (type !== 'text') throw invalid('response_format', `response_format type "${type}" cannot be sent to ${UPSTREAM}.`);
  }
  if (isSet(body.modalities)) {
    const modalities = arrayAt(body.modalities, 'modalities');
    if (modalities.some((m) => m !== 'text')) throw invalid('modalities', `Output modalities other than "text" cannot be sent to ${UPSTREAM}.`);
  }
}

function translateMessage(value: unknown, path: string, system: string[], turns: Turn[]): void {
  const message = objectAt(value, path);
  const role = stringAt(message.role, `${path}.role`);
  const known = MESSAGE_KEYS[role];
  if (known === undefined) throw invalid(`${path}.role`, `Role "${role}" cannot be sent to ${UPSTREAM}.`);
  onlyKnownKeys(message, known, path, UPSTREAM);
  if (isSet(message.name)) stringAt(message.name, `${path}.name`);
  const contentPath = `${path}.content`;
  switch (role) {
    case 'system':
    case 'developer':
      system.push(textParts(message.content, contentPath).join('\n\n'));
      return;
    case 'user':
      addTurn(turns, 'user', userContent(message.content, contentPath));
      return;
    case 'assistant':
      addTurn(turns, 'assistant', assistantContent(message, path));
      return;
    default: {
      const id = stringAt(message.tool_call_id, `${path}.tool_call_id`);
      const text = textParts(message.content, contentPath).join('\n\n');
      addTurn(turns, 'user', [{ type: 'tool_result', tool_use_id: id, ...(text === '' ? {} : { content: text }) }]);
    }
  }
}

/** Anthropic wants user and assistant turns to alternate: consecutive same-role messages merge. */
function addTurn(turns: Turn[], role: Turn['role'], content: Json[]): void {
  if (content.length === 0) return;
  const last = turns[turns.length - 1];
  if (last?.role === role) last.content.push(...content);
  else turns.push({ role, content });
}

function textBlocks(texts: string[]): Json[] {
  return texts.filter((text) => text !== '').map((text) => ({ type: 'text', text }));
}

/** Content that may only hold text: a string or text parts. */
function textParts(content: unknown, path: string): string[] {
  if (typeof content === 'string') return [content];
  return arrayAt(content, path).map((item, i) => {
    const at = `${path}[${i}]`;
    const part = objectAt(item, at);
    const type = stringAt(part.type, `${at}.type`);
    if (type !== 'text') throw invalid(`${at}.type`, `Content part type "${type}" cannot be sent to ${UPSTREAM} here.`);
    onlyKnownKeys(part, TEXT_PART_KEYS, at, UPSTREAM);
    return stringAt(part.text, `${at}.text`);
  });
}

function userContent(content: unknown, path: string): Json[] {
  if (typeof content === 'string') return textBlocks([content]);
  const blocks: Json[] = [];
  arrayAt(content, path).forEach((item, i) => {
    const at = `${path}[${i}]`;
    const part = objectAt(item, at);
    const type = stringAt(part.type, `${at}.type`);
    if (type === 'text') {
      onlyKnownKeys(part, TEXT_PART_KEYS, at, UPSTREAM);
      blocks.push(...textBlocks([stringAt(part.text, `${at}.text`)]));
    } else if (type === 'image_url') {
      onlyKnownKeys(part, new Set(['type', 'image_url']), at, UPSTREAM);
      blocks.push(imageBlock(objectAt(part.image_url, `${at}.image_url`), `${at}.image_url`));
    } else {
      throw invalid(`${at}.type`, `Content part type "${type}" cannot be sent to ${UPSTREAM}.`);
    }
  });
  return blocks;
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

function imageBlock(image: Json, path: string): Json {
  onlyKnownKeys(image, new Set(['url', 'detail']), path, UPSTREAM);
  const url = stringAt(image.url, `${path}.url`);
  const data = DATA_URL.exec(url);
  if (data !== null) {
    const mediaType = data[1]!.toLowerCase();
    if (!IMAGE_MEDIA_TYPES.has(mediaType)) throw invalid(`${path}.url`, `Image type "${mediaType}" cannot be sent to ${UPSTREAM} (it takes JPEG, PNG, GIF and WebP).`);
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: data[2] } };
  }
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw invalid(`${path}.url`, `"${path}.url" must be an http(s) URL or a base64 data URL.`);
}

function assistantContent(message: Json, path: string): Json[] {
  const contentPath = `${path}.content`;
  const blocks: Json[] = [];
  if (typeof message.content === 'string') blocks.push(...textBlocks([message.content]));
  else if (isSet(message.content)) {
    arrayAt(message.content, contentPath).forEach((item, i) => {
      const at = `${contentPath}[${i}]`;
      const part = objectAt(item, at);
      const type = stringAt(part.type, `${at}.type`);
      if (type === 'text') blocks.push(...textBlocks([stringAt(part.text, `${at}.text`)]));
      else if (type === 'refusal') blocks.push(...textBlocks([stringAt(part.refusal, `${at}.refusal`)]));
      else throw invalid(`${at}.type`, `Content part type "${type}" cannot be sent to ${UPSTREAM}.`);
    });
  }
  if (isSet(message.refusal)) blocks.push(...textBlocks([stringAt(message.refusal, `${path}.refusal`)]));
  if (isSet(message.tool_calls)) {
    arrayAt(message.tool_calls, `${path}.tool_calls`).forEach((item, i) => blocks.push(toolUse(item, `${path}.tool_calls[${i}]`)));
  }
  return blocks;
}

function toolUse(value: unknown, path: string): Json {
  const call = objectAt(value, path);
  onlyKnownKeys(call, new Set(['id', 'type', 'function']), path, UPSTREAM);
  const type = stringAt(call.type, `${path}.type`);
  if (type !== 'function') throw invalid(`${path}.type`, `Tool call type "${type}" cannot be sent to ${UPSTREAM}.`);
  const fn = objectAt(call.function, `${path}.function`);
  const argsPath = `${path}.function.arguments`;
  const args = stringAt(fn.arguments, argsPath);
  let input: unknown = {};
  if (args !== '') {
    try {
      input = JSON.parse(args);
    } catch {
      throw invalid(argsPath, `"${argsPath}" must be a JSON object; it is not valid JSON.`);
    }
  }
  if (!isObject(input)) throw invalid(argsPath, `"${argsPath}" must be a JSON object.`);
  return { type: 'tool_use', id: stringAt(call.id, `${path}.id`), name: stringAt(fn.name, `${path}.function.name`), input };
}

function addTools(body: Json, out: Json): void {
  const tools = isSet(body.tools) ? arrayAt(body.tools, 'tools').map((tool, i) => anthropicTool(tool, `tools[${i}]`)) : [];
  const choice = isSet(body.tool_choice) ? toolChoice(body.tool_choice) : undefined;
  const serial = isSet(body.parallel_tool_calls) && !booleanAt(body.parallel_tool_calls, 'parallel_tool_calls');
  if (tools.length === 0) return;
  out.tools = tools;
  if (serial && choice?.type !== 'none') out.tool_choice = { ...(choice ?? { type: 'auto' }), disable_parallel_tool_use: true };
  else if (choice !== undefined) out.tool_choice = choice;
}

function anthropicTool(value: unknown, path: string): Json {
  const tool = objectAt(value, path);
  const type = stringAt(tool.type, `${path}.type`);
  if (type !== 'function') throw invalid(`${path}.type`, `Tool type "${type}" cannot be sent to ${UPSTREAM}.`);
  onlyKnownKeys(tool, new Set(['type', 'function']), path, UPSTREAM);
  const fnPath = `${path}.function`;
  const fn = objectAt(tool.function, fnPath);
  onlyKnownKeys(fn, new Set(['name', 'description', 'parameters', 'strict']), fnPath, UPSTREAM);
  const out: Json = { name: stringAt(fn.name, `${fnPath}.name`) };
  if (isSet(fn.description)) out.description = stringAt(fn.description, `${fnPath}.description`);
  // Anthropic requires a schema; OpenAI's absent one means "no parameters".
  out.input_schema = isSet(fn.parameters) ? objectAt(fn.parameters, `${fnPath}.parameters`) : { type: 'object', properties: {} };
  if (isSet(fn.strict) && booleanAt(fn.strict, `${fnPath}.strict`)) out.strict = true;
  return out;
}

function toolChoice(value: unknown): Json {
  if (typeof value === 'string') {
    if (value === 'auto') return { type: 'auto' };
    if (value === 'required') return { type: 'any' };
    if (value === 'none') return { type: 'none' };
    throw invalid('tool_choice', `tool_choice "${value}" cannot be sent to ${UPSTREAM}.`);
  }
  const choice = objectAt(value, 'tool_choice');
  const type = stringAt(choice.type, 'tool_choice.type');
  if (type !== 'function') throw invalid('tool_choice.type', `tool_choice type "${type}" cannot be sent to ${UPSTREAM}.`);
  onlyKnownKeys(choice, new Set(['type', 'function']), 'tool_choice', UPSTREAM);
  return { type: 'tool', name: stringAt(objectAt(choice.function, 'tool_choice.function').name, 'tool_choice.function.name') };
}

function thinkingBudget(body: Json): number | undefined {
  if (!isSet(body.reasoning_effort)) return undefined;
  const effort = stringAt(body.reasoning_effort, 'reasoning_effort');
  if (effort === 'none') return undefined;
  const budget = THINKING_BUDGETS[effort];
  if (budget === undefined) throw invalid('reasoning_effort', `reasoning_effort "${effort}" cannot be sent to ${UPSTREAM}.`);
  return budget;
}
