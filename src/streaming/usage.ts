// Token usage as reported by OpenAI and OpenAI-compatible upstreams, normalised to one shape.
// Shapes follow openai/openai-openapi `CompletionUsage`, `ResponseUsage`, `TranscriptTextUsageTokens`
// and `ImagesUsage` (https://github.com/openai/openai-openapi), plus the variants of providers
// that put usage elsewhere: Moonshot (`choices[0].usage`), Groq (`x_groq.usage`,
// https://console.groq.com/docs/openai) and DeepSeek (`prompt_cache_hit_tokens`,
// https://api-docs.deepseek.com). Anthropic's Messages API usage has its own readers at the end:
// its `input_tokens` means something else, so callers that know they hold an Anthropic body use them.

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Subset of promptTokens served from the prompt cache. */
  cachedTokens: number;
  /** Subset of promptTokens written to the prompt cache (Anthropic charges them above input). */
  cacheWriteTokens?: number;
  /** Subset of completionTokens spent on reasoning. */
  reasoningTokens: number;
  /** Realtime and audio models: the subset of promptTokens that was audio and not served from cache (priced apart). */
  audioPromptTokens?: number;
  /** Realtime and audio models: the subset of completionTokens that was audio. */
  audioCompletionTokens?: number;
}

type JsonObject = Record<string, unknown>;

const USAGE_KEY = Buffer.from('"usage"');

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A usable token count, or undefined for absent, negative or non-finite values. */
function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function nested(parent: JsonObject, key: string, field: string): number | undefined {
  const child = parent[key];
  return isObject(child) ? count(child[field]) : undefined;
}

/**
 * Reads one usage object, chat style (`prompt_tokens`…) or Responses/audio/images style
 * (`input_tokens`…). Returns undefined when no token counter is present at all, e.g. for
 * `{type:"duration", seconds}` transcription usage, which is billed by time, not tokens.
 */
function fromUsageObject(usage: unknown): Usage | undefined {
  if (!isObject(usage)) return undefined;
  const present = ['prompt_tokens', 'completion_tokens', 'total_tokens', 'input_tokens', 'output_tokens'].some(
    (key) => typeof usage[key] === 'number',
  );
  if (!present) return undefined;
  const promptTokens = count(usage.prompt_tokens) ?? count(usage.input_tokens) ?? 0;
  const completionTokens = count(usage.completion_tokens) ?? count(usage.output_tokens) ?? 0;
  const read: Usage = {
    promptTokens,
    completionTokens,
    totalTokens: count(usage.total_tokens) ?? promptTokens + completionTokens,
    cachedTokens:
      nested(usage, 'prompt_tokens_details', 'cached_tokens') ??
      nested(usage, 'input_tokens_details', 'cached_tokens') ??
      // Realtime's `response.done` (https://platform.openai.com/docs/api-reference/realtime-server-events/response/done).
      nested(usage, 'input_token_details', 'cached_tokens') ??
      // DeepSeek reports cache hits beside the totals instead of in the details object.
      count(usage.prompt_cache_hit_tokens) ??
      0,
    reasoningTokens:
      nested(usage, 'completion_tokens_details', 'reasoning_tokens') ??
      nested(usage, 'output_tokens_details', 'reasoning_tokens') ??
      0,
  };
  const audioIn = nested(usage, 'input_token_details', 'audio_tokens');
  const audioOut = nested(usage, 'output_token_details', 'audio_tokens');
  if (audioIn !== undefined) {
    const details = usage.input_token_details as JsonObject;
    const cachedAudio = isObject(details.cached_tokens_details) ? (count(details.cached_tokens_details.audio_tokens) ?? 0) : 0;
    read.audioPromptTokens = Math.max(0, audioIn - cachedAudio);
  }
  if (audioOut !== undefined) read.audioCompletionTokens = audioOut;
  return read;
}

/**
 * Finds usage in a parsed response body or stream event: top-level `usage` (chat, completions,
 * embeddings, Responses bodies, transcriptions, images), `response.usage` (Responses terminal
 * stream events), `choices[0].usage` (Moonshot streams) or `x_groq.usage` (Groq before 2025).
 */
export function usageFromObject(obj: unknown): Usage | undefined {
  if (!isObject(obj)) return undefined;
  const direct = fromUsageObject(obj.usage);
  if (direct !== undefined) return direct;
  if (isObject(obj.response)) {
    const response = fromUsageObject(obj.response.usage);
    if (response !== undefined) return response;
  }
  if (Array.isArray(obj.choices) && isObject(obj.choices[0])) {
    const choice = fromUsageObject(obj.choices[0].usage);
    if (choice !== undefined) return choice;
  }
  return isObject(obj.x_groq) ? fromUsageObject(obj.x_groq.usage) : undefined;
}

/** Usage from a whole JSON body; parses only when the bytes `"usage"` occur. Never throws. */
export function usageFromJsonBuffer(body: Buffer): Usage | undefined {
  if (body.indexOf(USAGE_KEY) === -1) return undefined;
  // A leading BOM would make JSON.parse fail; leading blank lines (DeepSeek) are fine.
  const from = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8', from));
  } catch {
    return undefined;
  }
  return usageFromObject(parsed);
}

/**
 * Anthropic's usage object (https://docs.anthropic.com/en/api/messages, `usage`):
 * `input_tokens` counts only the input neither read from nor written to the cache, so
 * the prompt is `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`; cached
 * tokens are the reads, cache-write tokens the creations, completion tokens `output_tokens`
 * (thinking included: Anthropic does not report it apart). Undefined when no counter is present.
 */
export function usageFromAnthropic(usage: unknown): Usage | undefined {
  if (!isObject(usage)) return undefined;
  const counts = anthropicCounts(usage);
  return counts === undefined ? undefined : fromAnthropicCounts(counts);
}

/** Usage of a whole Anthropic message body (`POST /v1/messages` without `stream`): its top-level `usage`. */
export function usageFromAnthropicMessage(body: unknown): Usage | undefined {
  return isObject(body) ? usageFromAnthropic(body.usage) : undefined;
}

/**
 * Usage after one event of an Anthropic stream, given the usage so far: `message_start` carries
 * it in `message.usage`, each `message_delta` in `usage` with counts that are cumulative
 * (https://docs.anthropic.com/en/docs/build-with-claude/streaming). A delta usually repeats only
 * `output_tokens`; a field it repeats never lowers what an earlier event said (cumulative counts
 * only grow, and a `0` placeholder must not erase the prompt). Other events: `previous`.
 */
export function usageFromAnthropicEvent(event: unknown, previous: Usage | undefined): Usage | undefined {
  if (!isObject(event)) return previous;
  let usage: unknown;
  if (event.type === 'message_start') usage = isObject(event.message) ? event.message.usage : undefined;
  else if (event.type === 'message_delta') usage = event.usage;
  else return previous;
  const counts = isObject(usage) ? anthropicCounts(usage) : undefined;
  if (counts === undefined) return previous;
  if (previous === undefined) return fromAnthropicCounts(counts);
  const cacheRead = previous.cachedTokens;
  const cacheWrite = previous.cacheWriteTokens ?? 0;
  return fromAnthropicCounts({
    input: Math.max(counts.input, previous.promptTokens - cacheRead - cacheWrite),
    cacheRead: Math.max(counts.cacheRead, cacheRead),
    cacheWrite: Math.max(counts.cacheWrite, cacheWrite),
    output: Math.max(counts.output, previous.completionTokens),
  });
}

/** Usage from a whole Anthropic JSON body; parses only when the bytes `"usage"` occur. Never throws. */
export function usageFromAnthropicJsonBuffer(body: Buffer): Usage | undefined {
  if (body.indexOf(USAGE_KEY) === -1) return undefined;
  try {
    return usageFromAnthropicMessage(JSON.parse(body.toString('utf8')));
  } catch {
    return undefined;
  }
}

interface AnthropicCounts {
  input: number;
  cacheRead: number;
  cacheWrite: number;
  output: number;
}

const ANTHROPIC_COUNTERS = ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'];

function anthropicCounts(usage: JsonObject): AnthropicCounts | undefined {
  if (!ANTHROPIC_COUNTERS.some((key) => typeof usage[key] === 'number')) return undefined;
  return {
    input: count(usage.input_tokens) ?? 0,
    cacheRead: count(usage.cache_read_input_tokens) ?? 0,
    cacheWrite: count(usage.cache_creation_input_tokens) ?? 0,
    output: count(usage.output_tokens) ?? 0,
  };
}

function fromAnthropicCounts({ input, cacheRead, cacheWrite, output }: AnthropicCounts): Usage {
  const promptTokens = input + cacheRead + cacheWrite;
  return { promptTokens, completionTokens: output, totalTokens: promptTokens + output, cachedTokens: cacheRead, cacheWriteTokens: cacheWrite, reasoningTokens: 0 };
}
