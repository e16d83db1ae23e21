import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import type { Database } from './database.js';
import type { UsageRecordsTable } from './schema.js';
import type { UsageGroupBy, UsageReportRow } from '../admin/console-types.js';
import { REFUSED_BEFORE_UPSTREAM } from '../errors/catalogue.js';
import { toStorageError } from './storage-error.js';
import { LEVELS, PG_UPSERT_PARAMETERS, pgUpsert, RollupBatch, splitRange, sqliteUpsert, type RangePart } from './usage-rollup.js';

export type UsageSource = 'upstream' | 'estimated' | 'none' | 'cache';

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
  /** The /api/chat conversation the request named (0005); absent or null when none. */
  conversationId?: string | null;
}

export type { UsageGroupBy, UsageReportRow };

export interface UsageReportFilter {
  keyName?: string;
  upstream?: string;
  /** Inclusive. */
  since?: Date;
  /** Exclusive, so consecutive [since, until) windows never count a record twice. */
  until?: Date;
  by: UsageGroupBy;
}

/** Rows come sorted by group in JavaScript string order (so days ascend): declared with the admin API's answers (admin/console-types.ts). */

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
 * limit. The batch's daily and hourly sums go into the rollups (usage-rollup.ts) in the same
 * transaction: one upsert per bucket on SQLite, and on PostgreSQL one INSERT … ON CONFLICT per
 * rollup in the same statement (data-modifying WITH). Both are all-or-nothing per batch.
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
  ['aborted', 'int4'], ['usage_source', 'text'], ['error_code', 'text'], ['conversation_id', 'text'],
] as const satisfies ReadonlyArray<readonly [keyof UsageRecordsTable, 'text' | 'int4' | 'float8']>;
type ColumnValue = string | number | null;

const COLUMN_LIST = COLUMNS.map(([name]) => name).join(', ');
const SQLITE_INSERT = `insert into usage_records (${COLUMN_LIST}) values (${COLUMNS.map(() => '?').join(', ')})`;
// One statement: the raw insert and the daily upsert as data-modifying WITH parts, the hourly upsert last.
const PG_INSERT = [
  `with inserted as (insert into usage_records (${COLUMN_LIST}) select * from unnest(${COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')}))`,
  ...LEVELS.slice(0, -1).map((level, i) => `, ${level.column}_sums as (${pgUpsert(level, COLUMNS.length + 1 + i * PG_UPSERT_PARAMETERS)})`),
  pgUpsert(LEVELS.at(-1)!, COLUMNS.length + 1 + (LEVELS.length - 1) * PG_UPSERT_PARAMETERS),
].join(' ');

/**
 * Raw rows deleted per statement by `deleteRawBefore` unless told otherwise. Smaller on SQLite:
 * better-sqlite3 runs the statement on the event loop, so its length is added to the requests in
 * flight (1,000 rows ≈ 3 ms with 10 M rows, bench/RESULTS.md); PostgreSQL runs it elsewhere.
 */
export const DELETE_BATCH = { sqlite: 1_000, postgres: 5_000 } as const;

// Written without bound parameters so PostgreSQL sees the SELECT and GROUP BY expressions as equal.
// `ts`, `hour` and `day` share their format, so their first ten characters are the UTC date alike.
const GROUP_EXPRESSIONS: Record<UsageGroupBy, (time: string) => RawBuilder<string>> = {
  model: () => sql<string>`coalesce(model, '(none)')`,
  key: () => sql<string>`coalesce(key_name, '(none)')`,
  upstream: () => sql<string>`coalesce(upstream, '(none)')`,
  day: (time) => sql<string>`substr(${sql.ref(time)}, 1, 10)`,
  hour: (time) => sql<string>`substr(${sql.ref(time)}, 1, 13)`,
};

export class UsageRepository {
  readonly #database: Database;
  /** SQLite: the batch insert, prepared on first use (a transaction function over the insert and the upserts). */
  #sqliteInsert: ((records: readonly UsageRecord[]) => void) | undefined;

  constructor(database: Database) {
    this.#database = database;
  }

  /** All-or-nothing: a batch and its rollup sums are one transaction (SQLite) or one statement (PostgreSQL). */
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
        const rollup = new RollupBatch();
        const columns = columnArrays(records, rollup);
        await database.pool.query(PG_INSERT, [...columns, ...LEVELS.flatMap((level) => rollup.columns(level))]);
      }
    } catch (error) {
      throw toStorageError(error, `record usage (${records.length} records)`);
    }
  }

  /**
   * Whole days and hours of [since, until) come from the rollups, the partial hours at its ends
   * from the raw rows (usage-rollup.ts), in one statement. `now` only decides where the current
   * hour begins when `until` is open; the result is the same for any value.
   */
  async report(filter: UsageReportFilter, now = new Date()): Promise<UsageReportRow[]> {
    const keyName = filter.keyName === undefined ? [] : [sql`key_name = ${filter.keyName}`];
    const upstream = filter.upstream === undefined ? [] : [sql`upstream = ${filter.upstream}`];
    // By hour, whole days come from the hourly rollup too (the daily one has no hours).
    const parts = splitRange(filter.since, filter.until, now, filter.by === 'hour' ? 'hour' : 'day').map((part) => {
      const { table, time } = sourceOf(part);
      const group = GROUP_EXPRESSIONS[filter.by](time);
      const sums = part.source === 'raw' ? RAW_SUMS : ROLLUP_SUMS;
      // By day or hour, a rollup is grouped on its period column, in index order (no sort); the outer query merges the hours of a day.
      const groupBy = (filter.by === 'day' || filter.by === 'hour') && part.source !== 'raw' ? sql.ref(time) : group;
      return sql`select ${group} as bucket, ${sums} from ${sql.table(table)} where ${all([...within(time, part), ...keyName, ...upstream])} group by ${groupBy}`;
    });
    let rows;
    try {
      ({ rows } = await sql<ReportSums & { bucket: string }>`
        select bucket, sum(requests) as requests, sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
          sum(cached_tokens) as cached_tokens, sum(reasoning_tokens) as reasoning_tokens, sum(total_tokens) as total_tokens,
          sum(cost_usd) as cost_usd, sum(errors) as errors
        from (${sql.join(parts, sql` union all `)}) parts group by bucket`.execute(this.#database.db));
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
      // SUM skips NULLs and is NULL only when every value is: exactly the documented semantics.
      costUsd: row.cost_usd === null ? null : Number(row.cost_usd),
      errors: Number(row.errors),
    }));
    return report.sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  }

  /**
   * Spend of one key since `since` (inclusive; all time when undefined), for budget checks: the
   * rollups' whole days and hours plus the raw rows of the partial hours, as `report` reads them.
   * `excludeRefused`: leave out requests the gateway refused before sending them upstream (the
   * catalogue's REFUSED_BEFORE_UPSTREAM: rate limits, bad input…); they used nothing and do not
   * count as requests toward rpd.
   */
  async totalsSince(keyId: string, since: Date | undefined, options: { excludeRefused?: boolean; now?: Date } = {}): Promise<UsageTotals> {
    const exclude = options.excludeRefused === true;
    const parts = splitRange(since, undefined, options.now ?? new Date()).map((part) => {
      const { table, time } = sourceOf(part);
      const where = all([sql`key_id = ${keyId}`, ...within(time, part)]);
      if (part.source !== 'raw') {
        return exclude
          ? sql`select sum(requests) - sum(refused) as requests, sum(total_tokens) - sum(refused_tokens) as tokens, coalesce(sum(cost_usd), 0) - sum(refused_cost_usd) as cost_usd from ${sql.table(table)} where ${where}`
          : sql`select sum(requests) as requests, sum(total_tokens) as tokens, sum(cost_usd) as cost_usd from ${sql.table(table)} where ${where}`;
      }
      const kept = exclude ? sql` and (error_code is null or error_code not in (${sql.join(REFUSED_BEFORE_UPSTREAM)}))` : sql``;
      return sql`select count(*) as requests, sum(total_tokens) as tokens, sum(cost_usd) as cost_usd from usage_records where ${where}${kept}`;
    });
    try {
      const { rows } = await sql<{ requests: number | string; tokens: number | string; cost_usd: number | string }>`
        select coalesce(sum(requests), 0) as requests, coalesce(sum(tokens), 0) as tokens, coalesce(sum(cost_usd), 0) as cost_usd
        from (${sql.join(parts, sql` union all `)}) parts`.execute(this.#database.db);
      const row = rows[0];
      return { requests: Number(row?.requests ?? 0), tokens: Number(row?.tokens ?? 0), costUsd: Number(row?.cost_usd ?? 0) };
    } catch (error) {
      throw toStorageError(error, 'read usage totals');
    }
  }

  /**
   * Deletes at most `limit` raw rows older than `before` (the oldest first, by the ts index) and
   * says how many went. The rollups are never touched. One short statement, so a caller deleting
   * many rows does it in small steps and the writer gets the database in between.
   */
  async deleteRawBefore(before: Date, limit: number = DELETE_BATCH[this.#database.kind]): Promise<number> {
    const cutoff = before.toISOString();
    // PostgreSQL: `= any(array(…))` makes the ids a value list looked up by primary key; `in (…)`
    // may be planned as a join that scans the whole table for a few thousand ids.
    const statement = this.#database.kind === 'sqlite'
      ? sql`delete from usage_records where id in (select id from usage_records where ts < ${cutoff} order by ts limit ${limit})`
      : sql`delete from usage_records where id = any(array(select id from usage_records where ts < ${cutoff} order by ts limit ${limit}))`;
    try {
      const result = await statement.execute(this.#database.db);
      return Number(result.numAffectedRows ?? 0);
    } catch (error) {
      throw toStorageError(error, 'delete old usage records');
    }
  }
}

interface ReportSums {
  requests: number | string;
  prompt_tokens: number | string;
  completion_tokens: number | string;
  cached_tokens: number | string;
  reasoning_tokens: number | string;
  total_tokens: number | string;
  cost_usd: number | string | null;
  errors: number | string;
}

/** The sums of a report, over rollup rows and over raw rows, in the same columns. */
const ROLLUP_SUMS = sql`sum(requests) as requests, sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
  sum(cached_tokens) as cached_tokens, sum(reasoning_tokens) as reasoning_tokens, sum(total_tokens) as total_tokens,
  sum(cost_usd) as cost_usd, sum(errors) as errors`;
const RAW_SUMS = sql`count(*) as requests, sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
  sum(cached_tokens) as cached_tokens, sum(reasoning_tokens) as reasoning_tokens, sum(total_tokens) as total_tokens,
  sum(cost_usd) as cost_usd, sum(case when status >= 400 or error_code is not null then 1 else 0 end) as errors`;

/** The table a part of a range is read from, and its time column. */
function sourceOf(part: RangePart): { table: string; time: string } {
  return part.source === 'raw' ? { table: 'usage_records', time: 'ts' } : { table: part.source.table, time: part.source.column };
}

/** `column >= from and column < to`, for the ends the range has. */
function within(column: string, range: RangePart): RawBuilder<unknown>[] {
  const conditions: RawBuilder<unknown>[] = [];
  if (range.from !== undefined) conditions.push(sql`${sql.ref(column)} >= ${range.from}`);
  if (range.to !== undefined) conditions.push(sql`${sql.ref(column)} < ${range.to}`);
  return conditions;
}

function all(conditions: RawBuilder<unknown>[]): RawBuilder<unknown> {
  return conditions.length === 0 ? sql`1 = 1` : sql.join(conditions, sql` and `);
}

function prepareSqliteInsert(sqlite: BetterSqlite3.Database): (records: readonly UsageRecord[]) => void {
  const statement = sqlite.prepare<[ColumnValue[]]>(SQLITE_INSERT);
  const upserts = LEVELS.map((level) => [level, sqlite.prepare<[(string | number | null)[]]>(sqliteUpsert(level))] as const);
  const row: ColumnValue[] = new Array<ColumnValue>(COLUMNS.length);
  // better-sqlite3 wraps the function in BEGIN … COMMIT and rolls back if it throws.
  return sqlite.transaction((records: readonly UsageRecord[]) => {
    const rollup = new RollupBatch();
    for (const record of records) {
      bindRecord(record, row);
      statement.run(row);
      addToRollup(rollup, row);
    }
    for (const [level, upsert] of upserts) for (const bucket of rollup.rows(level)) upsert.run(bucket);
  });
}

/** One array per column, in COLUMNS order, for the `unnest` insert; the batch's sums go to `rollup`. */
function columnArrays(records: readonly UsageRecord[], rollup: RollupBatch): ColumnValue[][] {
  const columns: ColumnValue[][] = COLUMNS.map(() => new Array<ColumnValue>(records.length));
  const row: ColumnValue[] = new Array<ColumnValue>(COLUMNS.length);
  for (let r = 0; r < records.length; r++) {
    bindRecord(records[r] as UsageRecord, row);
    for (let c = 0; c < row.length; c++) (columns[c] as ColumnValue[])[r] = row[c] as ColumnValue;
    addToRollup(rollup, row);
  }
  return columns;
}

/** Sums a bound row (the values as stored, so the rollup agrees with the raw rows to the unit). */
function addToRollup(rollup: RollupBatch, row: readonly ColumnValue[]): void {
  const dimensions = [row[2], row[3], row[5], row[6]] as [string | null, string | null, string | null, string | null];
  const tokens = [row[8], row[9], row[10], row[11], row[12]] as [number, number, number, number, number];
  rollup.add(row[0] as string, dimensions, row[7] as number, row[18] as string | null, tokens, row[13] as number | null);
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
  row[19] = record.conversationId ?? null;
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
