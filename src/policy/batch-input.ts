import type { AppKey } from '../auth/app-key.js';
import { GatewayError } from '../errors/index.js';
import { requestedMaxTokens } from '../metering/estimate-usage.js';
import type { PriceTable } from '../metering/pricing.js';
import { estimatePromptTokens } from '../metering/token-estimate.js';
import { classify } from './endpoints.js';

/** What a batch input file asks for, as far as the key's limits are concerned. */
export interface BatchEstimate {
  lines: number;
  promptTokens: number;
  /** The most the lines may generate (their max_tokens fields). */
  completionTokens: number;
  costUsd: number;
}

/** A line longer than this is not a request the upstream would take either. */
const MAX_LINE_CHARS = 8 * 1024 * 1024;

const refuse = (line: number, message: string): GatewayError => new GatewayError('invalid_request', `Batch input line ${line}: ${message}`, { param: 'input_file_id' });

/**
 * Checks every line of a batch input file (JSONL, https://platform.openai.com/docs/guides/batch)
 * against an app key, as if each line were its own request: the line's endpoint must be the
 * batch's and one the key could call, its model must be allowed (and priced for a USD budget),
 * its max_tokens within the key's ceiling. The file cannot carry the key's persona, so the
 * endpoint table refuses batches to keys with one. Returns the estimate budgets are charged.
 */
export async function checkBatchInput(lines: AsyncIterable<string>, key: AppKey, batchEndpoint: string, options: { estimate: boolean; prices: PriceTable }): Promise<BatchEstimate> {
  const total: BatchEstimate = { lines: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 };
  let number = 0;
  for await (const text of lines) {
    number += 1;
    if (text.trim() === '') continue;
    if (text.length > MAX_LINE_CHARS) throw refuse(number, 'is too long.');
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      throw refuse(number, 'is not valid JSON.');
    }
    if (line === null || typeof line !== 'object' || Array.isArray(line)) throw refuse(number, 'is not a JSON object.');
    const { url, body, method } = line as { url?: unknown; body?: unknown; method?: unknown };
    if (method !== undefined && method !== 'POST') throw refuse(number, `method must be POST.`);
    if (typeof url !== 'string' || url !== batchEndpoint) throw refuse(number, `"url" must be the batch's endpoint ${batchEndpoint}.`);
    const endpoint = classify('POST', url.replace(/^\/v1(?=\/)/, ''));
    // Only endpoints the gateway meters (chat, completions, embeddings, responses) can be estimated and held to the key.
    if (!endpoint.known || endpoint.endpoint.kind === 'other') throw refuse(number, `${url} cannot be checked against key "${key.name}" in a batch.`);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw refuse(number, '"body" must be a JSON object.');
    const model = (body as { model?: unknown }).model;
    if (typeof model !== 'string' || model === '' || model.length > 256) throw refuse(number, '"body.model" must be a model name.');
    if (key.models !== undefined && !key.models.matches(model)) {
      throw new GatewayError('model_not_allowed', `Batch input line ${number}: key "${key.name}" may not use model "${model}" (allowed: ${key.modelPatterns?.join(', ') || 'none'}).`, { param: 'input_file_id' });
    }
    const maxTokens = requestedMaxTokens(body);
    if (key.maxTokensCeiling !== undefined && endpoint.endpoint.kind !== 'embeddings' && (maxTokens === 0 || maxTokens > key.maxTokensCeiling)) {
      throw refuse(number, `key "${key.name}" allows at most ${key.maxTokensCeiling} tokens per answer; set max_tokens (or max_completion_tokens) to at most that.`);
    }
    if (key.limits.budgetUsd != null && options.prices.priceFor(model) === undefined) {
      throw new GatewayError('model_not_priced', `Batch input line ${number}: model "${model}" has no price, so the USD budget of key "${key.name}" cannot count it.`, { param: 'input_file_id' });
    }
    total.lines += 1;
    if (!options.estimate) continue;
    const promptTokens = estimatePromptTokens(endpoint.endpoint.kind, body, model);
    total.promptTokens += promptTokens;
    total.completionTokens += maxTokens;
    total.costUsd += options.prices.cost(model, { promptTokens, completionTokens: maxTokens, cachedTokens: 0 }) ?? 0;
  }
  if (total.lines === 0) throw new GatewayError('invalid_request', 'The batch input file has no requests.', { param: 'input_file_id' });
  return total;
}
