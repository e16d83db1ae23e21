import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { REFUSED_BEFORE_UPSTREAM } from '../../errors/catalogue.js';

/*
 * Usage at scale (issue 14): hourly and daily rollups of usage_records, kept by the usage writer
 * in the transaction that inserts the raw rows, so whole days and hours are read from them and
 * raw rows can be pruned (`usage_retention`). The rollups are small and kept forever.
 *
 * One row per UTC hour (day) × key × model × upstream. Errors and requests refused before the
 * upstream (the catalogue's REFUSED_BEFORE_UPSTREAM, which budget baselines leave out) are counted
 * in columns rather than split into rows by error code, which doubled the rows a 30-day report
 * reads in bench/usage-scale.ts. The route is not a dimension either: /v1 routes carry object ids
 * (`/v1/files/file-…`), which would make a rollup as large as the raw table.
 *
 * The dimensions are nullable like the raw columns, and SQLite (and PostgreSQL before 15) treat
 * NULLs as distinct in a unique index, so uniqueness is on `coalesce('=' || col, '')`: NULL → '',
 * '' → '=', 'x' → '=x'. That keeps NULL and '' apart and lets `on conflict` name the index on both
 * databases (SQLite ≥ 3.24, PostgreSQL ≥ 9.5).
 *
 * `if not exists`, and backfills that fill a period only while the rollup has no row for it, for
 * the same reason as 0001: SQLite migrations run outside a transaction, so a crash half-way must
 * leave something this migration can finish on the next start without counting a row twice.
 * All instances must run this version or later: an older one writes raw rows without their sums.
 */

/** Each rollup with the column holding the start of its period (an ISO timestamp like `ts`). */
const ROLLUPS = [
  ['usage_hourly', 'hour'],
  ['usage_daily', 'day'],
] as const;

export const usageRollup: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const [table, period] of ROLLUPS) {
      await db.schema
        .createTable(table)
        .ifNotExists()
        // Start of the UTC hour or day, formatted like usage_records.ts: `2025-01-31T12:00:00.000Z`.
        .addColumn(period, 'text', (col) => col.notNull())
        .addColumn('key_id', 'text')
        .addColumn('key_name', 'text')
        .addColumn('model', 'text')
        .addColumn('upstream', 'text')
        .addColumn('requests', 'bigint', (col) => col.notNull().defaultTo(0))
        // Records with status >= 400 or an error code.
        .addColumn('errors', 'bigint', (col) => col.notNull().defaultTo(0))
        // Records refused before the upstream, with their total tokens and known cost.
        .addColumn('refused', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('refused_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('refused_cost_usd', 'double precision', (col) => col.notNull().defaultTo(0))
        .addColumn('prompt_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('completion_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('cached_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('reasoning_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('total_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
        // Null while no record of the row had a known cost, as SUM(cost_usd) over the raw rows.
        .addColumn('cost_usd', 'double precision')
        .execute();
      // Leads with the period: also the index of reports over a time range. Its expressions must
      // match the `on conflict` target in usage-rollup.ts exactly.
      await sql`create unique index if not exists ${sql.id(`${table}_bucket_idx`)} on ${sql.id(table)} (${sql.id(period)}, (coalesce('=' || key_id, '')), (coalesce('=' || key_name, '')), (coalesce('=' || model, '')), (coalesce('=' || upstream, '')))`.execute(db);
      // Budget baselines: one key's periods since the start of its budget period.
      await db.schema.createIndex(`${table}_key_id_${period}_idx`).ifNotExists().on(table).columns(['key_id', period]).execute();
    }
    await backfillUsageRollup(db);
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const [table] of ROLLUPS) await db.schema.dropTable(table).execute();
  },
};

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Sums the raw rows already stored into the rollups: the hourly one from the raw rows, one
 * statement per hour that has rows (the next such hour found by the ts index), the daily one
 * from the hourly one, one statement per day. Short statements keep each under the PostgreSQL
 * pool's query timeout (10 s) and the memory of a group small, however many rows there are.
 * A period is only filled while its rollup has no row for it, so running this again after a
 * crash half-way (SQLite migrations run outside a transaction) cannot count twice.
 * Exported for bench/usage-scale.ts.
 */
export async function backfillUsageRollup(db: Kysely<unknown>): Promise<void> {
  const next = async (table: string, column: string, from: string) =>
    (await sql<{ at: string | null }>`select min(${sql.ref(column)}) as at from ${sql.table(table)} where ${sql.ref(column)} >= ${from}`.execute(db)).rows[0]?.at ?? null;
  const hourOf = (ts: string) => `${ts.slice(0, 13)}:00:00.000Z`;
  const dayOf = (ts: string) => `${ts.slice(0, 10)}T00:00:00.000Z`;
  const after = (start: string, ms: number) => new Date(Date.parse(start) + ms).toISOString();
  // The codes as of this migration; the writer classifies new records with the catalogue of its day.
  const refused = sql`error_code in (${sql.join(REFUSED_BEFORE_UPSTREAM.map((code) => sql.lit(code)))})`;

  for (let ts = await next('usage_records', 'ts', ''); ts !== null; ) {
    const hour = hourOf(ts);
    const end = after(hour, HOUR_MS);
    // substr(ts, 1, 13) is `YYYY-MM-DDTHH` of the fixed-width UTC timestamp (schema.ts).
    await sql`
      insert into usage_hourly (hour, key_id, key_name, model, upstream, requests, errors, refused, refused_tokens, refused_cost_usd,
        prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, total_tokens, cost_usd)
      select ${hour}, key_id, key_name, model, upstream, count(*),
        sum(case when status >= 400 or error_code is not null then 1 else 0 end),
        sum(case when ${refused} then 1 else 0 end), sum(case when ${refused} then total_tokens else 0 end),
        sum(case when ${refused} then coalesce(cost_usd, 0) else 0 end),
        sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens), sum(total_tokens), sum(cost_usd)
      from usage_records
      where ts >= ${hour} and ts < ${end} and not exists (select 1 from usage_hourly where hour = ${hour})
      group by key_id, key_name, model, upstream`.execute(db);
    ts = await next('usage_records', 'ts', end);
  }
  for (let hour = await next('usage_hourly', 'hour', ''); hour !== null; ) {
    const day = dayOf(hour);
    const end = after(day, DAY_MS);
    await sql`
      insert into usage_daily (day, key_id, key_name, model, upstream, requests, errors, refused, refused_tokens, refused_cost_usd,
        prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, total_tokens, cost_usd)
      select ${day}, key_id, key_name, model, upstream, sum(requests), sum(errors), sum(refused), sum(refused_tokens), sum(refused_cost_usd),
        sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens), sum(total_tokens), sum(cost_usd)
      from usage_hourly
      where hour >= ${day} and hour < ${end} and not exists (select 1 from usage_daily where day = ${day})
      group by key_id, key_name, model, upstream`.execute(db);
    hour = await next('usage_hourly', 'hour', end);
  }
}
