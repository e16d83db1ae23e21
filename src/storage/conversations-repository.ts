import { sql } from 'kysely';
import type { Selectable } from 'kysely';
import type { ConversationSummary, ConversationTurn } from '../domain/conversation.js';
import type { Database } from './database.js';
import type { ConversationTurnsTable } from './schema.js';
import { isUniqueViolation, toStorageError } from './storage-error.js';

/** A turn to store: the prompt as the caller sent it and the answer as it was relayed. */
export interface NewTurn {
  prompt: string;
  answer: string;
  askedAt: Date;
  answeredAt: Date;
}

/** Where a conversation is: its owner (an app key id, or OWNER_SCOPE) and the bot's id for it. */
export interface ConversationRef {
  keyId: string;
  conversationId: string;
}

/** Expired conversations deleted per statement pair by the sweep: small, so no statement holds SQLite long. */
const SWEEP_BATCH = 200;
/** A concurrent append (another instance or process) got in the way: try again this many times in all. */
const APPEND_ATTEMPTS = 5;

/**
 * Conversations of /api/chat (issue 16) and their turns. Every read and write names the owner
 * key, so one key can never reach another's conversation, whatever id it sends.
 *
 * Appends are safe across gateway instances sharing PostgreSQL: inside one transaction the
 * conversation's row is upserted first, which locks it until commit, so a second instance's
 * append to the same conversation waits and then numbers its turn after this one (SQLite has one
 * writer at a time anyway); should two inserts still meet, the primary key (key_id,
 * conversation_id, seq) refuses the second and it is retried with a fresh number. History is read
 * in `seq` order. What this does not give is answer-after-answer ordering across instances: two
 * instances may read the same history before either stores its turn (the in-process queue orders
 * turns within one instance; see conversations/turn-queue.ts).
 */
export class ConversationsRepository {
  readonly #database: Database;

  constructor(database: Database) {
    this.#database = database;
  }

  /**
   * The newest `limit` turns of a conversation not expired at `now`, oldest first; empty when
   * there is none.
   */
  async recentTurns(ref: ConversationRef, limit: number, now: Date): Promise<ConversationTurn[]> {
    const rows = await this.#run('read conversation', (db) =>
      db
        .selectFrom('conversation_turns as t')
        .innerJoin('conversations as c', (join) => join.onRef('c.key_id', '=', 't.key_id').onRef('c.conversation_id', '=', 't.conversation_id'))
        .selectAll('t')
        .where('t.key_id', '=', ref.keyId)
        .where('t.conversation_id', '=', ref.conversationId)
        .where('c.expires_at', '>', now.toISOString())
        .orderBy('t.seq', 'desc')
        .limit(limit)
        .execute(),
    );
    return rows.reverse().map(toTurn);
  }

  /** Every turn of a conversation not expired at `now`, oldest first, with its summary; undefined when there is none. */
  async get(ref: ConversationRef, now: Date): Promise<{ summary: ConversationSummary; turns: ConversationTurn[] } | undefined> {
    return this.#run('read conversation', async (db) => {
      const row = await db
        .selectFrom('conversations')
        .selectAll()
        .where('key_id', '=', ref.keyId)
        .where('conversation_id', '=', ref.conversationId)
        .where('expires_at', '>', now.toISOString())
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const turns = await db.selectFrom('conversation_turns').selectAll().where('key_id', '=', ref.keyId).where('conversation_id', '=', ref.conversationId).orderBy('seq', 'asc').execute();
      const summary: ConversationSummary = { id: row.conversation_id, turns: turns.length, createdAt: new Date(row.created_at), lastAt: new Date(row.last_at), expiresAt: new Date(row.expires_at) };
      return { summary, turns: turns.map(toTurn) };
    });
  }

  /** One key's conversations not expired at `now`, most recent first, at most `limit`. */
  async list(keyId: string, now: Date, limit: number): Promise<ConversationSummary[]> {
    const rows = await this.#run('list conversations', (db) =>
      db
        .selectFrom('conversations as c')
        .select(['c.conversation_id', 'c.created_at', 'c.last_at', 'c.expires_at'])
        .select((eb) => eb.selectFrom('conversation_turns as t').whereRef('t.key_id', '=', 'c.key_id').whereRef('t.conversation_id', '=', 'c.conversation_id').select((inner) => inner.fn.countAll<number | string>().as('n')).as('turns'))
        .where('c.key_id', '=', keyId)
        .where('c.expires_at', '>', now.toISOString())
        .orderBy('c.last_at', 'desc')
        .orderBy('c.conversation_id', 'asc')
        .limit(limit)
        .execute(),
    );
    return rows.map((row) => ({ id: row.conversation_id, turns: Number(row.turns ?? 0), createdAt: new Date(row.created_at), lastAt: new Date(row.last_at), expiresAt: new Date(row.expires_at) }));
  }

  /**
   * Appends one turn, in one transaction: an expired conversation of that id is forgotten first;
   * the conversation's last message and expiry move to `turn.answeredAt` (+ `ttlSeconds`); turns
   * beyond the newest `maxTurns` are deleted. Resolves with the turn's number.
   */
  async append(ref: ConversationRef, turn: NewTurn, options: { ttlSeconds: number; maxTurns: number }): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#database.db.transaction().execute(async (trx) => {
          const now = turn.answeredAt.toISOString();
          const expired = await trx.deleteFrom('conversations').where('key_id', '=', ref.keyId).where('conversation_id', '=', ref.conversationId).where('expires_at', '<=', now).executeTakeFirst();
          if (expired.numDeletedRows > 0n) await trx.deleteFrom('conversation_turns').where('key_id', '=', ref.keyId).where('conversation_id', '=', ref.conversationId).execute();
          const expiresAt = new Date(turn.answeredAt.getTime() + options.ttlSeconds * 1000).toISOString();
          // The upsert locks the conversation's row (PostgreSQL) until commit: appends to it queue here.
          await trx
            .insertInto('conversations')
            .values({ key_id: ref.keyId, conversation_id: ref.conversationId, created_at: turn.askedAt.toISOString(), last_at: now, expires_at: expiresAt })
            .onConflict((oc) => oc.columns(['key_id', 'conversation_id']).doUpdateSet({ last_at: now, expires_at: expiresAt }))
            .execute();
          const last = await trx
            .selectFrom('conversation_turns')
            .select((eb) => eb.fn.max('seq').as('seq'))
            .where('key_id', '=', ref.keyId)
            .where('conversation_id', '=', ref.conversationId)
            .executeTakeFirst();
          const seq = Number(last?.seq ?? 0) + 1;
          await trx
            .insertInto('conversation_turns')
            .values({ key_id: ref.keyId, conversation_id: ref.conversationId, seq, prompt: turn.prompt, answer: turn.answer, asked_at: turn.askedAt.toISOString(), answered_at: now })
            .execute();
          await trx.deleteFrom('conversation_turns').where('key_id', '=', ref.keyId).where('conversation_id', '=', ref.conversationId).where('seq', '<=', seq - options.maxTurns).execute();
          return seq;
        });
      } catch (error) {
        if (attempt < APPEND_ATTEMPTS && isUniqueViolation(error)) continue;
        // SQLite refuses at once (no busy wait) a transaction whose snapshot another process's write made stale.
        if (attempt < APPEND_ATTEMPTS && isSqliteBusy(error)) {
          await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
          continue;
        }
        throw toStorageError(error, 'store conversation turn');
      }
    }
  }

  /**
   * Forgets a conversation (its turns and itself); resolves false when the key had none of that id
   * (one expired but not swept yet is deleted as well, and counts as none: it was already forgotten).
   */
  async delete(ref: ConversationRef, now: Date): Promise<boolean> {
    return this.#run('delete conversation', (db) =>
      db.transaction().execute(async (trx) => {
        const row = await trx.selectFrom('conversations').select('expires_at').where('key_id', '=', ref.keyId).where('conversation_id', '=', ref.conversationId).executeTakeFirst();
        await trx.deleteFrom('conversation_turns').where('key_id', '=', ref.keyId).where('conversation_id', '=', ref.conversationId).execute();
        await trx.deleteFrom('conversations').where('key_id', '=', ref.keyId).where('conversation_id', '=', ref.conversationId).execute();
        return row !== undefined && row.expires_at > now.toISOString();
      }),
    );
  }

  /**
   * Deletes up to SWEEP_BATCH conversations (with their turns) that expired by `now` or whose
   * app key no longer exists (any owner but `keepOwner`); resolves with how many went.
   */
  async deleteExpired(now: Date, keepOwner: string, batch = SWEEP_BATCH): Promise<number> {
    return this.#run('delete expired conversations', (db) =>
      db.transaction().execute(async (trx) => {
        const stale = await trx
          .selectFrom('conversations')
          .select(['key_id', 'conversation_id'])
          .where((eb) => eb.or([eb('expires_at', '<=', now.toISOString()), eb.and([eb('key_id', '<>', keepOwner), eb.not(eb.exists(eb.selectFrom('app_keys').select(sql.lit(1).as('one')).whereRef('app_keys.id', '=', 'conversations.key_id')))])]))
          .limit(batch)
          .execute();
        if (stale.length === 0) return 0;
        for (const table of ['conversation_turns', 'conversations'] as const) {
          await trx
            .deleteFrom(table)
            .where((eb) => eb.or(stale.map((row) => eb.and([eb('key_id', '=', row.key_id), eb('conversation_id', '=', row.conversation_id)]))))
            .execute();
        }
        return stale.length;
      }),
    );
  }

  async #run<T>(action: string, query: (db: Database['db']) => Promise<T>): Promise<T> {
    try {
      return await query(this.#database.db);
    } catch (error) {
      throw toStorageError(error, action);
    }
  }
}

function toTurn(row: Selectable<ConversationTurnsTable>): ConversationTurn {
  return { seq: Number(row.seq), prompt: row.prompt, answer: row.answer, askedAt: new Date(row.asked_at), answeredAt: new Date(row.answered_at) };
}

function isSqliteBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}
