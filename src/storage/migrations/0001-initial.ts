import { SqliteAdapter } from 'kysely';
import type { Kysely, Migration } from 'kysely';

/*
 * Column types are spelled so one definition suits both databases: `double precision` has REAL
 * affinity in SQLite and is float8 in PostgreSQL (plain `real` would be float4 there), `bigint`
 * has INTEGER affinity in SQLite. Enumerated text columns (source, budget_period, ...) carry no
 * CHECK constraint because widening one later would force a table rebuild on SQLite; the
 * repositories only write the documented values.
 *
 * `if not exists` throughout: Kysely runs SQLite migrations outside a transaction, so a crash
 * half-way must leave something this migration can finish on the next start.
 */
export const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;

    await db.schema
      .createTable('app_keys')
      .ifNotExists()
      .addColumn('id', 'text', (col) => col.primaryKey())
      .addColumn('name', 'text', (col) => col.notNull().unique())
      .addColumn('key_hash', 'text', (col) => col.notNull().unique())
      .addColumn('key_prefix', 'text', (col) => col.notNull())
      .addColumn('source', 'text', (col) => col.notNull())
      .addColumn('created_at', 'text', (col) => col.notNull())
      .addColumn('updated_at', 'text', (col) => col.notNull())
      .addColumn('expires_at', 'text')
      .addColumn('last_used_at', 'text')
      .addColumn('enabled', 'integer', (col) => col.notNull().defaultTo(1))
      .addColumn('models', 'text')
      .addColumn('rpm', 'integer')
      .addColumn('tpm', 'integer')
      .addColumn('rpd', 'integer')
      .addColumn('budget_tokens', 'bigint')
      .addColumn('budget_usd', 'double precision')
      .addColumn('budget_period', 'text')
      .addColumn('bot_desc', 'text')
      .addColumn('persona_mode', 'text')
      .addColumn('defaults', 'text')
      .addColumn('max_tokens_ceiling', 'integer')
      .addColumn('allow_origin', 'text')
      .addColumn('metadata', 'text')
      .execute();

    await db.schema
      .createTable('usage_records')
      .ifNotExists()
      // AUTOINCREMENT so ids are never reused after old rows are pruned (usable as an export cursor).
      .addColumn('id', sqlite ? 'integer' : 'bigserial', (col) =>
        sqlite ? col.primaryKey().autoIncrement() : col.primaryKey(),
      )
      .addColumn('ts', 'text', (col) => col.notNull())
      .addColumn('request_id', 'text', (col) => col.notNull())
      .addColumn('key_id', 'text')
      .addColumn('key_name', 'text')
      .addColumn('route', 'text', (col) => col.notNull())
      .addColumn('model', 'text')
      .addColumn('upstream', 'text')
      .addColumn('status', 'integer', (col) => col.notNull())
      .addColumn('prompt_tokens', 'integer', (col) => col.notNull().defaultTo(0))
      .addColumn('completion_tokens', 'integer', (col) => col.notNull().defaultTo(0))
      .addColumn('cached_tokens', 'integer', (col) => col.notNull().defaultTo(0))
      .addColumn('reasoning_tokens', 'integer', (col) => col.notNull().defaultTo(0))
      .addColumn('total_tokens', 'integer', (col) => col.notNull().defaultTo(0))
      .addColumn('cost_usd', 'double precision')
      .addColumn('latency_ms', 'double precision', (col) => col.notNull())
      .addColumn('ttfb_ms', 'double precision')
      .addColumn('aborted', 'integer', (col) => col.notNull().defaultTo(0))
      .addColumn('usage_source', 'text', (col) => col.notNull())
      .addColumn('error_code', 'text')
      .execute();

    // Budgets read one key's rows since a date; reports scan a time range.
    await db.schema
      .createIndex('usage_records_key_id_ts_idx')
      .ifNotExists()
      .on('usage_records')
      .columns(['key_id', 'ts'])
      .execute();
    await db.schema.createIndex('usage_records_ts_idx').ifNotExists().on('usage_records').column('ts').execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('usage_records').execute();
    await db.schema.dropTable('app_keys').execute();
  },
};
