import { SqliteAdapter, sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

/** The columns this migration adds to `owned_objects`, with their definitions (valid on both databases). */
const COLUMNS: ReadonlyArray<readonly [name: string, definition: string]> = [
  // 1 for a background response: its usage arrives after its request and is recorded once, when
  // the gateway first sees it finished (ownership/background-usage.ts).
  ['usage_pending', 'integer not null default 0'],
  // The model it runs on, which prices that usage.
  ['usage_model', 'text'],
  // When that usage was recorded: set by the one UPDATE that claims it, on whichever instance.
  ['usage_recorded_at', 'text'],
];

/*
 * Background responses metered once (issue 12). Columns are added one by one, each guarded, for
 * the same reason as 0002: SQLite migrations run outside a transaction, so a crash half-way must
 * leave something this migration can finish on the next start.
 */
export const backgroundUsage: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    if (db.getExecutor().adapter instanceof SqliteAdapter) {
      const { rows } = await sql<{ name: string }>`select name from pragma_table_info('owned_objects')`.execute(db);
      const present = new Set(rows.map((row) => row.name));
      for (const [name, definition] of COLUMNS) {
        if (!present.has(name)) await sql`alter table owned_objects add column ${sql.id(name)} ${sql.raw(definition)}`.execute(db);
      }
    } else {
      for (const [name, definition] of COLUMNS) await sql`alter table owned_objects add column if not exists ${sql.id(name)} ${sql.raw(definition)}`.execute(db);
    }
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const [name] of [...COLUMNS].reverse()) await db.schema.alterTable('owned_objects').dropColumn(name).execute();
  },
};
