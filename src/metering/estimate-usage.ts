import type { Usage } from '../streaming/usage.js';
import { estimateCompletionTokens, estimatePromptTokens, type EstimateEndpoint } from './token-estimate.js';

/**
 * Usage for a request whose upstream never reported it (a stream cut by the client or the
 * upstream): the prompt estimated from the request, the completion from the text seen so far.
 */
export function estimateUsage(kind: EstimateEndpoint, body: unknown, model: string | undefined, textSeen: string): Usage {
  const name = model ?? '';
  const promptTokens = kind === 'other' ? 0 : estimatePromptTokens(kind, body, name);
  const completionTokens = textSeen === '' ? 0 : estimateCompletionTokens(textSeen, name);
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedTokens: 0, reasoningTokens: 0 };
}

/** The most a request may generate, as the caller asked (chat, completions, Responses field names). */
export function requestedMaxTokens(body: unknown): number {
  if (body === null || typeof body !== 'object') return 0;
  const fields = body as { max_tokens?: unknown; max_completion_tokens?: unknown; max_output_tokens?: unknown };
  for (const value of [fields.max_completion_tokens, fields.max_tokens, fields.max_output_tokens]) {
    if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value;
  }
  return 0;
}

/** The most a request sent upstream can cost when its answer never came: its prompt plus its max_tokens. */
export function abortedEstimate(kind: EstimateEndpoint, body: unknown, model: string | undefined): Usage {
  const promptTokens = estimatePromptTokens(kind, body, model ?? '');
  const completionTokens = requestedMaxTokens(body);
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedTokens: 0, reasoningTokens: 0 };
}
