import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
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

/**
 * The usage insert is the one write whose count grows with traffic, so it skips Kysely's query
 * building: SQLite runs one prepared statement per record inside one transaction; PostgreSQL
 * gets the whole batch as one array per column in one statement of fixed text (`unnest` turns
 * the arrays back into rows) — one round trip whatever the batch size, and no bound-parameter
 * limit. Both are all-or-nothing per batch.
 *
 * The PostgreSQL statement is deliberately unnamed: a named (server-side prepared) one saves a
 * few tenths of a millisecond of parsing per flush, but breaks behind PgBouncer in transaction
 * mode (before 1.21, or with max_prepared_statements off), and a usage write that keeps failing
 * makes the gateway fail closed.
 *
 * Each column with its PostgreSQL type, in the order `bindRecord` fills a row.
 */
const COLUMNS = [
  ['ts', 'text'], ['request_id', 'text'], ['key_id', 'text'], ['key_name', 'text'], ['route', 'text'],
  ['model', 'text'], ['upstream', 'text'], ['status', 'int4'], ['prompt_tokens', 'int4'],
  ['completion_tokens', 'int4'], ['cached_tokens', 'int4'], ['reasoning_tokens', 'int4'],
  ['total_tokens', 'int4'], ['cost_usd', 'float8'], ['latency_ms', 'float8'], ['ttfb_ms', 'float8'],
  ['aborted', 'int4'], ['usage_source', 'text'], ['error_code', 'text'],
] as const satisfies ReadonlyArray<readonly [keyof UsageRecordsTable, 'text' | 'int4' | 'float8']>;
type ColumnValue = string | number | null;

const COLUMN_LIST = COLUMNS.map(([name]) => name).join(', ');
const SQLITE_INSERT = `insert into usage_records (${COLUMN_LIST}) values (${COLUMNS.map(() => '?').join(', ')})`;
const PG_INSERT = `insert into usage_records (${COLUMN_LIST}) select * from unnest(${COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})`;

// Written without bound parameters so PostgreSQL sees the SELECT and GROUP BY expressions as equal.
const GROUP_EXPRESSIONS: Record<UsageGroupBy, RawBuilder<string>> = {
  model: sql<string>`coalesce(model, '(none)')`,
  key: sql<string>`coalesce(key_name, '(none)')`,
  // ts is a fixed-width ISO-8601 UTC string, so its first ten characters are the UTC date.
  day: sql<string>`substr(ts, 1, 10)`,
};

export class UsageRepository {
  readonly #database: Database;
  /** SQLite: the batch insert, prepared on first use (a transaction function over one statement). */
  #sqliteInsert: ((records: readonly UsageRecord[]) => void) | undefined;

  constructor(database: Database) {
    this.#database = database;
  }

  /** All-or-nothing: a batch is one transaction (SQLite) or one statement (PostgreSQL). */
  async insertBatch(records: readonly UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    const database = this.#database;
    try {
      if (database.kind === 'sqlite') {
        // Holding Kysely's connection lock: the statements cannot end up inside a transaction
        // another repository has open (better-sqlite3 would nest them as a savepoint in it).
        await database.db.connection().execute(async () => {
          this.#sqliteInsert ??= prepareSqliteInsert(database.sqlite);
          this.#sqliteInsert(records);
        });
      } else {
        await database.pool.query(PG_INSERT, columnArrays(records));
      }
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

function prepareSqliteInsert(sqlite: BetterSqlite3.Database): (records: readonly UsageRecord[]) => void {
  const statement = sqlite.prepare<[ColumnValue[]]>(SQLITE_INSERT);
  const row: ColumnValue[] = new Array<ColumnValue>(COLUMNS.length);
  // better-sqlite3 wraps the function in BEGIN … COMMIT and rolls back if it throws.
  return sqlite.transaction((records: readonly UsageRecord[]) => {
    for (const record of records) {
      bindRecord(record, row);
      statement.run(row);
    }
  });
}

/** One array per column, in COLUMNS order, for the `unnest` insert. */
function columnArrays(records: readonly UsageRecord[]): ColumnValue[][] {
  const columns: ColumnValue[][] = COLUMNS.map(() => new Array<ColumnValue>(records.length));
  const row: ColumnValue[] = new Array<ColumnValue>(COLUMNS.length);
  for (let r = 0; r < records.length; r++) {
    bindRecord(records[r] as UsageRecord, row);
    for (let c = 0; c < row.length; c++) (columns[c] as ColumnValue[])[r] = row[c] as ColumnValue;
  }
  return columns;
}

/** The record's column values, in COLUMNS order, written into `row` (reused: no object per record). */
function bindRecord(record: UsageRecord, row: ColumnValue[]): void {
  row[0] = record.ts.toISOString();
  row[1] = record.requestId;
  row[2] = record.keyId;
  row[3] = record.keyName;
  row[4] = record.route;
  row[5] = record.model;
  row[6] = record.upstream;
  row[7] = record.status;
  row[8] = count(record.promptTokens);
  row[9] = count(record.completionTokens);
  row[10] = count(record.cachedTokens);
  row[11] = count(record.reasoningTokens);
  row[12] = count(record.totalTokens);
  row[13] = finiteOrNull(record.costUsd);
  row[14] = finiteOrNull(record.latencyMs) ?? 0;
  row[15] = finiteOrNull(record.ttfbMs);
  row[16] = record.aborted ? 1 : 0;
  row[17] = record.usageSource;
  row[18] = record.errorCode;
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
