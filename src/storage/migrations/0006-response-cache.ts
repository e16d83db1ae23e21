import { SqliteAdapter, sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

/** The columns this migration adds to `app_keys`, with definitions valid on both databases. */
const COLUMNS: ReadonlyArray<readonly [name: string, definition: string]> = [
  // Seconds a cached answer is kept; 0 turns caching off for the key; null takes the owner's cache_ttl.
  ['cache_ttl', 'integer'],
  // Keys with the same group share cached answers; null keeps the key's answers its own.
  ['cache_group', 'text'],
];

/*
 * The response cache's per-key settings (issue 15). The cache itself is in memory or in Redis,
 * never in the database; a hit's usage record needs no column of its own (usage_source 'cache',
 * cost 0). Columns added one by one, each guarded, for the same reason as 0002: SQLite
 * migrations run outside a transaction, so a crash half-way must leave something this
 * migration can finish on the next start.
 */
export const responseCache: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    if (db.getExecutor().adapter instanceof SqliteAdapter) {
      const { rows } = await sql<{ name: string }>`select name from pragma_table_info('app_keys')`.execute(db);
      const present = new Set(rows.map((row) => row.name));
      for (const [name, definition] of COLUMNS) {
        if (!present.has(name)) await sql`alter table app_keys add column ${sql.id(name)} ${sql.raw(definition)}`.execute(db);
      }
    } else {
      for (const [name, definition] of COLUMNS) await sql`alter table app_keys add column if not exists ${sql.id(name)} ${sql.raw(definition)}`.execute(db);
    }
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const [name] of [...COLUMNS].reverse()) await db.schema.alterTable('app_keys').dropColumn(name).execute();
  },
};
