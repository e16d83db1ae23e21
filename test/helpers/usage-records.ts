import assert from 'node:assert/strict';
import type { TestGateway } from './gateway.js';

export interface UsageRow {
  status: number;
  error_code: string | null;
  usage_source: string;
  aborted: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  cost_usd: number | null;
  upstream: string | null;
  model: string | null;
  key_id: string | null;
  key_name: string | null;
  route: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The usage record of one request, found by its request id (the `x-request-id` the gateway
 * answered). Some requests are recorded just after the client saw the end of the response, so
 * the writer is flushed until the record shows up (up to 2 s).
 */
export async function usageRecord(gateway: TestGateway, requestId: string | null | undefined): Promise<UsageRow> {
  assert.ok(requestId, 'the request has an id');
  for (let i = 0; i < 100; i++) {
    await gateway.gateway.writer.flush();
    const row = await gateway.gateway.database.db
      .selectFrom('usage_records')
      .select(['status', 'error_code', 'usage_source', 'aborted', 'prompt_tokens', 'completion_tokens', 'cached_tokens', 'reasoning_tokens', 'total_tokens', 'cost_usd', 'upstream', 'model', 'key_id', 'key_name', 'route'])
      .where('request_id', '=', requestId)
      .executeTakeFirst();
    if (row) {
      const counts = { prompt_tokens: Number(row.prompt_tokens), completion_tokens: Number(row.completion_tokens), cached_tokens: Number(row.cached_tokens), reasoning_tokens: Number(row.reasoning_tokens), total_tokens: Number(row.total_tokens) };
      return { ...row, ...counts, cost_usd: row.cost_usd === null ? null : Number(row.cost_usd), aborted: Number(row.aborted) };
    }
    await sleep(20);
  }
  assert.fail(`no usage record for ${requestId}`);
}
