import { SqliteAdapter, sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

/** Columns this migration adds to existing tables, with definitions valid on both databases. */
const COLUMNS: ReadonlyArray<readonly [table: string, name: string, definition: string]> = [
  // Per-key memory settings; null takes the owner's (config.json) setting. memory is 0/1.
  ['app_keys', 'memory', 'integer'],
  ['app_keys', 'memory_max_tokens', 'integer'],
  ['app_keys', 'memory_max_turns', 'integer'],
  // Seconds after the last message.
  ['app_keys', 'memory_ttl', 'integer'],
  // The conversation a /api/chat request belonged to, when it named one.
  ['usage_records', 'conversation_id', 'text'],
];

/*
 * Conversations for /api/chat (issue 16). A conversation belongs to one key (`key_id`, or
 * '*owner' for callers without an app key) and is named by the bot (`conversation_id`); its
 * turns are numbered by `seq` under the primary key (key_id, conversation_id, seq), so two
 * instances appending at once can never store two turns under one number, and history is read
 * in `seq` order. `expires_at` is the last message's time plus the key's memory_ttl: reads skip
 * expired conversations and the sweep deletes them.
 *
 * No foreign key to app_keys: the owner scope is not a key, and the sweep removes the
 * conversations of deleted keys. Tables `if not exists` and columns added one by one, each
 * guarded, for the same reason as 0002: SQLite migrations run outside a transaction.
 */
export const conversations: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
    for (const [table, name, definition] of COLUMNS) {
      if (sqlite) {
        const { rows } = await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db);
        if (!rows.some((row) => row.name === name)) await sql`alter table ${sql.table(table)} add column ${sql.id(name)} ${sql.raw(definition)}`.execute(db);
      } else {
        await sql`alter table ${sql.table(table)} add column if not exists ${sql.id(name)} ${sql.raw(definition)}`.execute(db);
      }
    }

    await db.schema
      .createTable('conversations')
      .ifNotExists()
      .addColumn('key_id', 'text', (col) => col.notNull())
      .addColumn('conversation_id', 'text', (col) => col.notNull())
      .addColumn('created_at', 'text', (col) => col.notNull())
      .addColumn('last_at', 'text', (col) => col.notNull())
      .addColumn('expires_at', 'text', (col) => col.notNull())
      .addPrimaryKeyConstraint('conversations_pkey', ['key_id', 'conversation_id'])
      .execute();
    // The sweep finds expired conversations by it.
    await db.schema.createIndex('conversations_expires_at_idx').ifNotExists().on('conversations').column('expires_at').execute();

    await db.schema
      .createTable('conversation_turns')
      .ifNotExists()
      .addColumn('key_id', 'text', (col) => col.notNull())
      .addColumn('conversation_id', 'text', (col) => col.notNull())
      .addColumn('seq', 'integer', (col) => col.notNull())
      .addColumn('prompt', 'text', (col) => col.notNull())
      .addColumn('answer', 'text', (col) => col.notNull())
      .addColumn('asked_at', 'text', (col) => col.notNull())
      .addColumn('answered_at', 'text', (col) => col.notNull())
      .addPrimaryKeyConstraint('conversation_turns_pkey', ['key_id', 'conversation_id', 'seq'])
      .execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('conversation_turns').execute();
    await db.schema.dropTable('conversations').execute();
    for (const [table, name] of [...COLUMNS].reverse()) await db.schema.alterTable(table).dropColumn(name).execute();
  },
};
