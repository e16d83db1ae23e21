import type { Selectable } from 'kysely';
import type { Database } from './database.js';
import type { OwnedObjectsTable } from './schema.js';
import { toStorageError } from './storage-error.js';

/** An object an app key created through the gateway, and where it lives. */
export interface OwnedObject {
  /** The upstream's id (file-…, resp_…, batch_…). */
  id: string;
  /** An ObjectKind (policy/endpoints.ts); stored as text. */
  kind: string;
  keyId: string;
  /** Name of the upstream that holds it. */
  upstream: string;
  /** Fingerprint of the upstream key that created it (never the key), for affinity. */
  upstreamKey: string | null;
  createdAt: Date;
  /**
   * Set on a background response only: its usage arrives after its request and is recorded once,
   * when the gateway first sees it finished (ownership/background-usage.ts).
   */
  pendingUsage?: PendingUsage;
}

export interface PendingUsage {
  /** The model the response runs on (its usage is priced with it); null when the request named none. */
  model: string | null;
  /** When its usage was recorded; undefined while it is still to come. */
  recordedAt: Date | undefined;
}

function fromRow(row: Selectable<OwnedObjectsTable>): OwnedObject {
  const object: OwnedObject = { id: row.id, kind: row.kind, keyId: row.key_id, upstream: row.upstream, upstreamKey: row.upstream_key, createdAt: new Date(row.created_at) };
  if (Number(row.usage_pending) === 1) object.pendingUsage = { model: row.usage_model, recordedAt: row.usage_recorded_at === null ? undefined : new Date(row.usage_recorded_at) };
  return object;
}

/** The `owned_objects` table: who created which object. */
export class ObjectsRepository {
  constructor(private readonly database: Database) {}

  /**
   * Records objects; an id already recorded keeps its first owner (an upstream never reuses an
   * id, so a second insert can only be a replay of the same answer).
   */
  async insert(objects: readonly OwnedObject[]): Promise<void> {
    if (objects.length === 0) return;
    try {
      await this.database.db
        .insertInto('owned_objects')
        .values(
          objects.map((object) => ({
            id: object.id,
            kind: object.kind,
            key_id: object.keyId,
            upstream: object.upstream,
            upstream_key: object.upstreamKey,
            created_at: object.createdAt.toISOString(),
            usage_pending: object.pendingUsage ? 1 : 0,
            usage_model: object.pendingUsage?.model ?? null,
            usage_recorded_at: object.pendingUsage?.recordedAt?.toISOString() ?? null,
          })),
        )
        .onConflict((conflict) => conflict.column('id').doNothing())
        .execute();
    } catch (error) {
      throw toStorageError(error, 'recording object owners failed');
    }
  }

  async find(id: string): Promise<OwnedObject | undefined> {
    try {
      const row = await this.database.db.selectFrom('owned_objects').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : fromRow(row);
    } catch (error) {
      throw toStorageError(error, 'reading object owners failed');
    }
  }

  async findMany(ids: readonly string[]): Promise<OwnedObject[]> {
    if (ids.length === 0) return [];
    try {
      const rows = await this.database.db.selectFrom('owned_objects').selectAll().where('id', 'in', ids).execute();
      return rows.map(fromRow);
    } catch (error) {
      throw toStorageError(error, 'reading object owners failed');
    }
  }

  /**
   * Claims the recording of a background response's usage: true for exactly one caller, whichever
   * instance it runs on — one conditional UPDATE decides (a row lock on PostgreSQL, the write lock
   * on SQLite), and every later claim finds `usage_recorded_at` set.
   */
  async claimUsage(id: string, at: Date): Promise<boolean> {
    try {
      const result = await this.database.db
        .updateTable('owned_objects')
        .set({ usage_recorded_at: at.toISOString() })
        .where('id', '=', id)
        .where('usage_pending', '=', 1)
        .where('usage_recorded_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    } catch (error) {
      throw toStorageError(error, 'claiming the usage of a background response failed');
    }
  }

  /** Forgets an object the upstream deleted. */
  async remove(id: string): Promise<void> {
    try {
      await this.database.db.deleteFrom('owned_objects').where('id', '=', id).execute();
    } catch (error) {
      throw toStorageError(error, 'removing an object owner failed');
    }
  }
}
