import { SqliteAdapter, sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

/*
 * Tenant confinement (issue 10): per-key endpoint grants, and the owner of every object an app
 * key created through the gateway. `if not exists` and a guarded column add for the same reason
 * as 0001: SQLite migrations run outside a transaction.
 */
export const confinement: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    // JSON array of endpoint grants ("POST /v1/fine_tuning/jobs"); null = none beyond the defaults.
    if (db.getExecutor().adapter instanceof SqliteAdapter) {
      const { rows } = await sql<{ name: string }>`select name from pragma_table_info('app_keys')`.execute(db);
      if (!rows.some((row) => row.name === 'endpoints')) await sql`alter table app_keys add column endpoints text`.execute(db);
    } else {
      // Introspection would look at every schema; this touches only the app_keys on the search_path.
      await sql`alter table app_keys add column if not exists endpoints text`.execute(db);
    }

    await db.schema
      .createTable('owned_objects')
      .ifNotExists()
      // The upstream's id of the object (file-…, batch_…, resp_…, vs_…).
      .addColumn('id', 'text', (col) => col.primaryKey())
      .addColumn('kind', 'text', (col) => col.notNull())
      .addColumn('key_id', 'text', (col) => col.notNull())
      // Where it lives: the upstream's name and a fingerprint of the upstream key that created it
      // (never the key), so follow-ups go to the account that holds the object.
      .addColumn('upstream', 'text', (col) => col.notNull())
      .addColumn('upstream_key', 'text')
      .addColumn('created_at', 'text', (col) => col.notNull())
      .execute();
    await db.schema.createIndex('owned_objects_key_id_kind_idx').ifNotExists().on('owned_objects').columns(['key_id', 'kind']).execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('owned_objects').execute();
    await db.schema.alterTable('app_keys').dropColumn('endpoints').execute();
  },
};
