import assert from 'node:assert/strict';
import type { TestGateway } from './gateway.js';

export interface UsageRow {
  status: number;
  error_code: string | null;
  usage_source: string;
  aborted: number;
  completion_tokens: number;
  total_tokens: number;
  upstream: string | null;
  model: string | null;
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
      .select(['status', 'error_code', 'usage_source', 'aborted', 'completion_tokens', 'total_tokens', 'upstream', 'model'])
      .where('request_id', '=', requestId)
      .executeTakeFirst();
    if (row) return { ...row, completion_tokens: Number(row.completion_tokens), total_tokens: Number(row.total_tokens), aborted: Number(row.aborted) };
    await sleep(20);
  }
  assert.fail(`no usage record for ${requestId}`);
}
