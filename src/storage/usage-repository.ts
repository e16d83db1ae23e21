import { sql } from 'kysely';
import type { Insertable, RawBuilder } from 'kysely';
import type { Database } from './database.js';
import type { UsageRecordsTable } from './schema.js';
import { toStorageError } from './storage-error.js';

export type UsageSource = 'upstream' | 'estimated' | 'none';

/** One metered request; the row id is assigned by the database and never read back. */
export interface UsageRecord {
  ts: Date;
  requestId: string;
  keyId: string | null;
  keyName: string | null;
  route: string;
  model: string | null;
  upstream: string | null;
  status: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  totalTokens: number;
  /** null when the price of the model is unknown. */
  costUsd: number | null;
  latencyMs: number;
  ttfbMs: number | null;
  aborted: boolean;
  usageSource: UsageSource;
  errorCode: string | null;
}

export type UsageGroupBy = 'model' | 'day' | 'key';

export interface UsageReportFilter {
  keyName?: string;
  /** Inclusive. */
  since?: Date;
  /** Exclusive, so consecutive [since, until) windows never count a record twice. */
  until?: Date;
  by: UsageGroupBy;
}

/** Rows come sorted by group in JavaScript string order (so days ascend). */
export interface UsageReportRow {
  /** Model name, key name, or UTC day `YYYY-MM-DD`; records without a model or key group as `(none)`. */
  group: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  totalTokens: number;
  /** Sum of the known costs; null only when no record in the group has a cost. */
  costUsd: number | null;
  /** Records with status >= 400 or an error code (a stream that failed after its 200). */
  errors: number;
}

export interface UsageTotals {
  requests: number;
  tokens: number;
  /** Unknown costs count as 0. */
  costUsd: number;
}

const INSERTED_COLUMNS = 19;
/**
 * Rows per INSERT: SQLite builds may be compiled with the historical limit of 999 bound
 * parameters (ours allows 32766, but a system SQLite need not), PostgreSQL allows 65535.
 */
const ROWS_PER_INSERT: Record<Database['kind'], number> = {
  sqlite: Math.floor(999 / INSERTED_COLUMNS),
  postgres: Math.floor(65_535 / INSERTED_COLUMNS),
};

// Written without bound parameters so PostgreSQL sees the SELECT and GROUP BY expressions as equal.
const GROUP_EXPRESSIONS: Record<UsageGroupBy, RawBuilder<string>> = {
  model: sql<string>`coalesce(model, '(none)')`,
  key: sql<string>`coalesce(key_name, '(none)')`,
  // ts is a fixed-width ISO-8601 UTC string, so its first ten characters are the UTC date.
  day: sql<string>`substr(ts, 1, 10)`,
};

export class UsageRepository {
  readonly #database: Database;

  constructor(database: Database) {
    this.#database = database;
  }

  /** All-or-nothing: the chunks of one batch share a transaction. */
  async insertBatch(records: UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    const rows = records.map(toColumns);
    const size = ROWS_PER_INSERT[this.#database.kind];
    try {
      await this.#database.db.transaction().execute(async (trx) => {
        for (let start = 0; start < rows.length; start += size) {
          await trx.insertInto('usage_records').values(rows.slice(start, start + size)).execute();
        }
      });
    } catch (error) {
      throw toStorageError(error, `record usage (${records.length} records)`);
    }
  }

  async report(filter: UsageReportFilter): Promise<UsageReportRow[]> {
    const group = GROUP_EXPRESSIONS[filter.by];
    let query = this.#database.db
      .selectFrom('usage_records')
      .select((eb) => [
        group.as('bucket'),
        eb.fn.countAll().as('requests'),
        eb.fn.sum('prompt_tokens').as('prompt_tokens'),
        eb.fn.sum('completion_tokens').as('completion_tokens'),
        eb.fn.sum('cached_tokens').as('cached_tokens'),
        eb.fn.sum('reasoning_tokens').as('reasoning_tokens'),
        eb.fn.sum('total_tokens').as('total_tokens'),
        // SUM skips NULLs and is NULL only when every value is: exactly the documented semantics.
        eb.fn.sum('cost_usd').as('cost_usd'),
        sql<number>`sum(case when status >= 400 or error_code is not null then 1 else 0 end)`.as('errors'),
      ])
      .groupBy(group);
    if (filter.keyName !== undefined) query = query.where('key_name', '=', filter.keyName);
    if (filter.since !== undefined) query = query.where('ts', '>=', filter.since.toISOString());
    if (filter.until !== undefined) query = query.where('ts', '<', filter.until.toISOString());

    let rows;
    try {
      rows = await query.execute();
    } catch (error) {
      throw toStorageError(error, `report usage by ${filter.by}`);
    }
    // Counts and sums arrive as number, or (PostgreSQL numeric) as string: normalise. Sorted here
    // rather than in SQL so both backends agree (PostgreSQL sorts text by locale).
    const report = rows.map((row) => ({
      group: row.bucket,
      requests: Number(row.requests),
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
      cachedTokens: Number(row.cached_tokens),
      reasoningTokens: Number(row.reasoning_tokens),
      totalTokens: Number(row.total_tokens),
      costUsd: row.cost_usd === null ? null : Number(row.cost_usd),
      errors: Number(row.errors),
    }));
    return report.sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  }

  /** Spend of one key since `since` (inclusive; all time when undefined), for budget checks. */
  /**
   * `refusedCodes`: error codes of requests the gateway refused before sending them upstream
   * (rate limits, bad input…); they used nothing and do not count as requests toward rpd.
   */
  async totalsSince(keyId: string, since: Date | undefined, refusedCodes: readonly string[] = []): Promise<UsageTotals> {
    let query = this.#database.db
      .selectFrom('usage_records')
      .select((eb) => [
        eb.fn.countAll().as('requests'),
        eb.fn.coalesce(eb.fn.sum('total_tokens'), sql<number>`0`).as('tokens'),
        eb.fn.coalesce(eb.fn.sum('cost_usd'), sql<number>`0`).as('cost_usd'),
      ])
      .where('key_id', '=', keyId);
    if (since !== undefined) query = query.where('ts', '>=', since.toISOString());
    if (refusedCodes.length > 0) query = query.where((eb) => eb.or([eb('error_code', 'is', null), eb('error_code', 'not in', [...refusedCodes])]));
    try {
      const row = await query.executeTakeFirstOrThrow();
      return { requests: Number(row.requests), tokens: Number(row.tokens), costUsd: Number(row.cost_usd) };
    } catch (error) {
      throw toStorageError(error, 'read usage totals');
    }
  }
}

function toColumns(record: UsageRecord): Insertable<UsageRecordsTable> {
  return {
    ts: record.ts.toISOString(),
    request_id: record.requestId,
    key_id: record.keyId,
    key_name: record.keyName,
    route: record.route,
    model: record.model,
    upstream: record.upstream,
    status: record.status,
    prompt_tokens: count(record.promptTokens),
    completion_tokens: count(record.completionTokens),
    cached_tokens: count(record.cachedTokens),
    reasoning_tokens: count(record.reasoningTokens),
    total_tokens: count(record.totalTokens),
    cost_usd: finiteOrNull(record.costUsd),
    latency_ms: finiteOrNull(record.latencyMs) ?? 0,
    ttfb_ms: finiteOrNull(record.ttfbMs),
    aborted: record.aborted ? 1 : 0,
    usage_source: record.usageSource,
    error_code: record.errorCode,
  };
}

/*
 * One malformed number (NaN from a failed estimate, a fractional count) must not make the whole
 * batch fail: SQLite binds NaN as NULL (breaking NOT NULL) and PostgreSQL's integer rejects 1.5.
 */
function count(value: number): number {
  return Number.isFinite(value) && value > 0 ? Math.round(value) : 0;
}

function finiteOrNull(value: number | null): number | null {
  return value !== null && Number.isFinite(value) ? value : null;
}
