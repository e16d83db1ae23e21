/**
 * Token estimates for metering and token limits: used before a request is sent, and after it when the upstream
 * reported no usage. Counting follows OpenAI's cookbook "How to count tokens with tiktoken"
 * (https://github.com/openai/openai-cookbook/blob/main/examples/How_to_count_tokens_with_tiktoken.ipynb) and the
 * model → encoding table of tiktoken's `model.py` (our fact sheet, openai-protocol.md §12).
 *
 * Everything here is an estimate: it never throws on a malformed body, it counts what it can.
 */
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import type { GptEncoding } from 'gpt-tokenizer/GptEncoding';
import type { EndpointKind } from '../domain/endpoint-kind.js';

export type EncodingName = 'o200k_base' | 'cl100k_base';

/** The request kinds we can estimate: the endpoint kinds of the domain. */
export type EstimateEndpoint = EndpointKind;

/** Cookbook rule for gpt-3.5-turbo-0125 / gpt-4-0613 / gpt-4o: `<|start|>{role/name}\n{content}<|end|>\n`. */
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
/** Every reply is primed with `<|start|>assistant<|message|>`. */
const REPLY_PRIMER_TOKENS = 3;
/**
 * An image costs 85 tokens at `detail: "low"` and 85 + 170 per 512px tile at high detail. We cannot see the image
 * size without fetching it, so we count the flat base: a lower bound, documented as such.
 */
const IMAGE_PART_TOKENS = 85;
const IMAGE_PART_TYPES: ReadonlySet<string> = new Set(['image_url', 'input_image']);

/**
 * UTF-8 bytes one estimate may send through the tokenizer; text past this budget is estimated from its size.
 * Tokenizing costs ~0.1 µs per byte for prose and code but up to ~2.5 µs for adversarial text (random letters,
 * random CJK), all on the event loop. The budget keeps the hot path bounded whatever a caller sends: ~25 ms for
 * 256 KiB of English (~50k tokens counted exactly), ~0.7 s at worst (measured, cold caches). Counting bytes rather
 * than characters matters: a CJK character is 3 bytes and costs about three times as much to tokenize.
 */
export const MAX_TOKENIZED_BYTES = 256 * 1024;
/** Each tokenizer call has a fixed cost; charging it keeps a body of a million one-word messages bounded too. */
const CALL_COST_BYTES = 32;
/**
 * gpt-tokenizer merges each pre-token in O(n²): 100k letters with no space take 14 s. Pre-tokens never span a
 * whitespace/non-whitespace boundary or an ASCII digit, so a longer run without one is cut into pieces about
 * this size, which bounds each merge. Where the run has a letter followed by ASCII punctuation (compact JSON,
 * URLs, base64) the cut goes there: a pre-token always ends at that point, so the count stays exact. Only runs
 * without one (random letters, CJK without spaces) are cut anywhere, shifting the count by about one token a cut.
 */
const MAX_RUN_CHARS = 64;

/** Ordinary text: a `<|endoftext|>` typed by a user is counted as characters (as the API does), never rejected. */
const ORDINARY_TEXT = { disallowedSpecial: new Set<string>() };

type Encoder = Pick<GptEncoding, 'countTokens'>;

/**
 * The CommonJS builds load synchronously, so the first count can load its encoding on demand instead of every
 * process paying for both tables at startup (measured: cl100k ~150 ms and 7 MiB of heap, o200k ~330 ms and
 * 14 MiB). Nothing else imports the ESM build, so the tables are loaded once.
 */
const requireCjs = createRequire(import.meta.url);
const ENCODING_MODULES: Readonly<Record<EncodingName, string>> = {
  o200k_base: 'gpt-tokenizer/encoding/o200k_base',
  cl100k_base: 'gpt-tokenizer/encoding/cl100k_base',
};
const encoders = new Map<EncodingName, Encoder>();

function encoder(name: EncodingName): Encoder {
  let loaded = encoders.get(name);
  if (loaded === undefined) {
    loaded = requireCjs(ENCODING_MODULES[name]) as Encoder;
    encoders.set(name, loaded);
  }
  return loaded;
}

/** Loads an encoding now, e.g. at startup, so that the first request does not pay for it. */
export function preloadEncoding(name: EncodingName): void {
  encoder(name);
}

const O200K_PREFIXES = ['gpt-4o', 'gpt-4.1', 'gpt-4.5', 'gpt-5', 'chatgpt-4o'];
const CL100K_PREFIXES = ['gpt-4', 'gpt-3.5', 'gpt-35-turbo', 'text-embedding-'];
const CL100K_MODELS: ReadonlySet<string> = new Set(['davinci-002', 'babbage-002']);
/** o1, o1-mini, o3-2025-04-16, o4-mini…, but not a name that merely starts with "o" and a digit, like o10. */
const O_SERIES = /^o[134](?:-|$)/;

/**
 * The encoding tiktoken uses for `model` (§12). Fine-tuned ids (`ft:gpt-4o-mini:org::id`) and provider-prefixed
 * ids (`openai/gpt-4o`) use their base model's. gpt-oss uses o200k_harmony, which tokenizes text exactly as
 * o200k_base (it only adds special tokens). Other models (deepseek, qwen, llama…) have their own tokenizers; o200k
 * is the documented fallback, close enough for an estimate.
 */
export function encodingForModel(model: string): EncodingName {
  let name = typeof model === 'string' ? model.toLowerCase() : '';
  name = name.slice(name.lastIndexOf('/') + 1);
  if (name.startsWith('ft:')) name = name.slice(3);
  const base = name.split(':', 1)[0] ?? '';
  if (O_SERIES.test(base) || O200K_PREFIXES.some((prefix) => base.startsWith(prefix))) return 'o200k_base';
  if (CL100K_MODELS.has(base) || CL100K_PREFIXES.some((prefix) => base.startsWith(prefix))) return 'cl100k_base';
  return 'o200k_base';
}

/**
 * Size-based estimate for text past the budget: UTF-8 bytes / 4 is ~4 characters per token in English and stays
 * close for CJK (3 bytes and about 1 token per character), which characters / 4 would undercount fourfold.
 */
function approximateTokens(utf8Bytes: number): number {
  return Math.ceil(utf8Bytes / 4);
}

function isSpace(code: number): boolean {
  // The characters of JavaScript's `\s`, which the encodings' split patterns use.
  return (
    (code >= 0x09 && code <= 0x0d) ||
    code === 0x20 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

const DIGIT = 0;
const SPACE = 1;
const OTHER = 2;

function isAsciiLetter(code: number): boolean {
  const lower = code | 0x20;
  return lower >= 0x61 && lower <= 0x7a;
}

/**
 * ASCII punctuation ends any letter pre-token, except an apostrophe: o200k keeps a contraction (`'s`, `'t`…)
 * with the word before it.
 */
function endsWord(code: number): boolean {
  return code < 0x80 && code !== 0x27 && !isAsciiLetter(code) && !(code >= 0x30 && code <= 0x39) && !isSpace(code);
}

/** Counts `text`, cutting runs longer than MAX_RUN_CHARS into pieces (see there). One linear scan. */
function countInPieces(api: Encoder, text: string): number {
  let total = 0;
  let start = 0;
  let run = 0;
  let runClass = -1;
  /** Where the current run can be cut without changing its pre-tokens, or -1. */
  let exactCut = -1;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const charClass = code >= 0x30 && code <= 0x39 ? DIGIT : isSpace(code) ? SPACE : OTHER;
    if (charClass !== runClass || charClass === DIGIT) {
      runClass = charClass;
      run = 0;
      exactCut = -1;
    }
    run++;
    if (i > start && endsWord(code) && isAsciiLetter(text.charCodeAt(i - 1))) exactCut = i;
    // Never cut between the two halves of a surrogate pair.
    const lowSurrogate = code >= 0xdc00 && code <= 0xdfff;
    if (run > MAX_RUN_CHARS && !lowSurrogate) {
      const cut = exactCut > start ? exactCut : i;
      total += api.countTokens(text.slice(start, cut), ORDINARY_TEXT);
      start = cut;
      run = i - cut + 1;
      exactCut = -1;
    }
  }
  return total + api.countTokens(start === 0 ? text : text.slice(start), ORDINARY_TEXT);
}

/**
 * What the walk over a request body adds up for each string it counts. Two implementations share the one walk, so
 * the byte bound and the estimate count exactly the same strings with exactly the same framing constants.
 */
interface Counter {
  text(value: string): number;
}

/** Counts the strings of one request against one tokenization budget. */
class TextCounter implements Counter {
  private readonly encoding: EncodingName;
  private remaining = MAX_TOKENIZED_BYTES;

  constructor(model: string) {
    this.encoding = encodingForModel(model);
  }

  text(value: string): number {
    if (value.length === 0) return 0;
    const bytes = Buffer.byteLength(value, 'utf8');
    const cost = bytes + CALL_COST_BYTES;
    if (cost > this.remaining) return approximateTokens(bytes);
    this.remaining -= cost;
    return countInPieces(encoder(this.encoding), value);
  }
}

/**
 * Counts UTF-8 bytes: never less than TextCounter for the same string. gpt-tokenizer splits text into non-empty
 * pre-tokens and encodes each as one vocabulary entry or by byte-pair merging, which starts from one part per byte
 * and only joins parts; every cl100k and o200k entry is at least one byte (and a special token, were one allowed in
 * ordinary text, is longer). So N bytes encode to at most N tokens; the pieces countInPieces cuts never split a
 * character, so their bytes add up to N; and the size-based fallback is ceil(N / 4) <= N.
 * test/unit/metering/prompt-byte-bound.test.ts checks both vocabularies and random text.
 */
const BYTES: Counter = Object.freeze({ text: (value: string): number => (value.length === 0 ? 0 : Buffer.byteLength(value, 'utf8')) });

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringTokens(counter: Counter, value: unknown): number {
  return typeof value === 'string' ? counter.text(value) : 0;
}

/** JSON text of a value, or '' for what JSON cannot hold (cycles, BigInt, absurd nesting). */
function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

/** `content` given as parts: text counts, images a flat IMAGE_PART_TOKENS, audio and files nothing. */
function contentTokens(counter: Counter, content: unknown): number {
  if (typeof content === 'string') return counter.text(content);
  if (!Array.isArray(content)) return 0;
  let total = 0;
  for (const part of content) {
    if (typeof part === 'string') total += counter.text(part);
    else if (!isRecord(part)) continue;
    else if (typeof part.type === 'string' && IMAGE_PART_TYPES.has(part.type)) total += IMAGE_PART_TOKENS;
    else if (typeof part.text === 'string') total += counter.text(part.text);
    else total += stringTokens(counter, part.refusal);
  }
  return total;
}

/** `{ name, arguments }` of a tool call or a legacy function call. */
function functionCallTokens(counter: Counter, call: unknown): number {
  if (!isRecord(call)) return 0;
  return stringTokens(counter, call.name) + stringTokens(counter, call.arguments);
}

/** Cookbook rule: 3 per message, every string value, 1 more for a name. */
function chatMessageTokens(counter: Counter, message: unknown): number {
  if (!isRecord(message)) return 0;
  let total = TOKENS_PER_MESSAGE;
  // The own enumerable keys in order, as Object.entries has them, without an array per message.
  for (const key in message) {
    if (!Object.hasOwn(message, key)) continue;
    const value = message[key];
    if (typeof value === 'string') {
      total += counter.text(value);
      if (key === 'name') total += TOKENS_PER_NAME;
    } else if (key === 'content') {
      total += contentTokens(counter, value);
    } else if (key === 'tool_calls' && Array.isArray(value)) {
      for (const call of value) total += functionCallTokens(counter, isRecord(call) ? call.function : undefined);
    } else if (key === 'function_call') {
      total += functionCallTokens(counter, value);
    }
  }
  return total;
}

function chatMessagesTokens(counter: Counter, messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let total = REPLY_PRIMER_TOKENS;
  for (const message of messages) total += chatMessageTokens(counter, message);
  return total;
}

/**
 * Function definitions, counted as the JSON of name, description and parameters: an approximation (the cookbook's
 * exact rule depends on how OpenAI renders the schema, which changes). Takes chat tools (`{ function: {...} }`),
 * Responses tools and legacy `functions` (flat); built-in tools such as web_search have no name and count nothing.
 */
function toolDefinitionsTokens(counter: Counter, tools: unknown): number {
  if (!Array.isArray(tools)) return 0;
  let total = 0;
  for (const tool of tools) {
    if (!isRecord(tool)) continue;
    const fn = isRecord(tool.function) ? tool.function : tool;
    if (typeof fn.name !== 'string') continue;
    total += counter.text(jsonText({ name: fn.name, description: fn.description, parameters: fn.parameters }));
  }
  return total;
}

/** A completions `prompt` or embeddings `input`: a string, strings, a token array or token arrays. */
function textOrTokensTokens(counter: Counter, input: unknown): number {
  if (typeof input === 'string') return counter.text(input);
  if (!Array.isArray(input)) return 0;
  let total = 0;
  for (const item of input) {
    if (typeof item === 'string') total += counter.text(item);
    else if (typeof item === 'number') total += 1;
    else if (Array.isArray(item)) total += item.length;
  }
  return total;
}

/** A Responses input item: a message (role and content only, not its id or status), a tool call or its output. */
function responsesItemTokens(counter: Counter, item: unknown): number {
  if (!isRecord(item)) return 0;
  if (typeof item.role === 'string') {
    return TOKENS_PER_MESSAGE + counter.text(item.role) + contentTokens(counter, item.content);
  }
  if (item.type === 'function_call') return TOKENS_PER_MESSAGE + functionCallTokens(counter, item);
  if (item.type === 'function_call_output') return TOKENS_PER_MESSAGE + stringTokens(counter, item.output);
  return 0;
}

/**
 * The Responses API renders `instructions` and `input` into the same chat format, so they take the chat rule:
 * instructions as a system message, a string input as a user message. Reasoning items and references count nothing.
 */
function responsesTokens(counter: Counter, body: Record<string, unknown>): number {
  let total = REPLY_PRIMER_TOKENS;
  if (typeof body.instructions === 'string') {
    total += chatMessageTokens(counter, { role: 'system', content: body.instructions });
  }
  if (typeof body.input === 'string') total += chatMessageTokens(counter, { role: 'user', content: body.input });
  else if (Array.isArray(body.input)) for (const item of body.input) total += responsesItemTokens(counter, item);
  return total + toolDefinitionsTokens(counter, body.tools);
}

/** One Anthropic content block: text, a tool call's input, a tool result's content; images a flat IMAGE_PART_TOKENS. */
function anthropicBlockTokens(counter: Counter, block: unknown): number {
  if (typeof block === 'string') return counter.text(block);
  if (!isRecord(block)) return 0;
  switch (block.type) {
    case 'text':
      return stringTokens(counter, block.text);
    case 'image':
    case 'document':
      return IMAGE_PART_TOKENS;
    case 'tool_use':
      return stringTokens(counter, block.name) + counter.text(jsonText(block.input));
    case 'tool_result':
      return anthropicContentTokens(counter, block.content);
    case 'thinking':
      return stringTokens(counter, block.thinking);
    default:
      return 0;
  }
}

function anthropicContentTokens(counter: Counter, content: unknown): number {
  if (typeof content === 'string') return counter.text(content);
  if (!Array.isArray(content)) return 0;
  let total = 0;
  for (const block of content) total += anthropicBlockTokens(counter, block);
  return total;
}

/**
 * Anthropic's Messages API (https://docs.anthropic.com/en/api/messages): `system` and `messages` with content blocks,
 * counted with the chat rule and the OpenAI encodings — Claude's tokenizer is not public, so this is an estimate
 * (for admission and cut streams); the upstream's usage is what gets recorded.
 */
function messagesTokens(counter: Counter, body: Record<string, unknown>): number {
  let total = REPLY_PRIMER_TOKENS;
  if (body.system !== undefined) total += TOKENS_PER_MESSAGE + anthropicContentTokens(counter, body.system);
  if (Array.isArray(body.messages)) {
    for (const message of body.messages) {
      if (isRecord(message)) total += TOKENS_PER_MESSAGE + anthropicContentTokens(counter, message.content);
    }
  }
  if (Array.isArray(body.tools)) {
    for (const tool of body.tools) {
      if (isRecord(tool) && typeof tool.name === 'string') total += counter.text(jsonText({ name: tool.name, description: tool.description, parameters: tool.input_schema }));
    }
  }
  return total;
}

/** Tokens in `text` for `model`'s encoding; past MAX_TOKENIZED_BYTES, an estimate from its size. */
export function countTokens(text: string, model: string): number {
  return typeof text === 'string' ? new TextCounter(model).text(text) : 0;
}

/** Prompt tokens of chat `messages` by the cookbook rule (see chatMessageTokens). */
export function estimateChatPromptTokens(messages: unknown, model: string): number {
  return chatMessagesTokens(new TextCounter(model), messages);
}

/** Prompt tokens of a request body; 0 for endpoints whose bodies we do not read. */
export function estimatePromptTokens(endpoint: EstimateEndpoint, body: unknown, model: string): number {
  return promptTokens(new TextCounter(model), endpoint, body);
}

/**
 * An upper bound of `estimatePromptTokens(endpoint, body, model)` for every model, without tokenizing: the same walk
 * with each string counted as its UTF-8 bytes (a token covers at least one byte), plus the same per-message,
 * per-name, reply-primer and per-image tokens. Costs a scan of the strings, about a hundredth of tokenizing them,
 * and never loads an encoding.
 */
export function promptByteBound(endpoint: EstimateEndpoint, body: unknown): number {
  return promptTokens(BYTES, endpoint, body);
}

function promptTokens(counter: Counter, endpoint: EstimateEndpoint, body: unknown): number {
  if (!isRecord(body)) return 0;
  switch (endpoint) {
    case 'chat':
      return (
        chatMessagesTokens(counter, body.messages) +
        toolDefinitionsTokens(counter, body.tools) +
        toolDefinitionsTokens(counter, body.functions)
      );
    case 'completions':
      return textOrTokensTokens(counter, body.prompt);
    case 'embeddings':
      return textOrTokensTokens(counter, body.input);
    case 'responses':
      return responsesTokens(counter, body);
    case 'messages':
      return messagesTokens(counter, body);
    default:
      return 0;
  }
}

/** Completion tokens of generated text (e.g. a stream cut before its usage chunk). */
export function estimateCompletionTokens(text: string, model: string): number {
  return countTokens(text, model);
}
