// Token usage as reported by OpenAI and OpenAI-compatible upstreams, normalised to one shape.
// Shapes follow openai/openai-openapi `CompletionUsage`, `ResponseUsage`, `TranscriptTextUsageTokens`
// and `ImagesUsage` (https://github.com/openai/openai-openapi), plus the variants of providers
// that put usage elsewhere: Moonshot (`choices[0].usage`), Groq (`x_groq.usage`,
// https://console.groq.com/docs/openai) and DeepSeek (`prompt_cache_hit_tokens`,
// https://api-docs.deepseek.com).

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Subset of promptTokens served from the prompt cache. */
  cachedTokens: number;
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
