import { sql } from 'kysely';
import type { Insertable, Selectable, Updateable } from 'kysely';
import { randomBase62 } from '../domain/base62.js';
import type { BudgetPeriod, KeyDefaults, KeySettings, KeySource, PersonaMode } from '../domain/key-settings.js';
import type { Database } from './database.js';
import type { AppKeysTable } from './schema.js';
import { StorageError, isUniqueViolation, toStorageError } from './storage-error.js';

export interface AppKeyRow extends KeySettings {
  id: string;
  name: string;
  /** SHA-256 hex of the secret; the secret itself is never stored. */
  keyHash: string;
  /** The visible start of the secret, e.g. `oa-AbCd1234`. */
  keyPrefix: string;
  source: KeySource;
  createdAt: Date;
  updatedAt: Date;
  lastUsedAt: Date | null;
}

/** Omitted settings take their defaults: enabled, everything else null. */
export interface NewAppKey extends Partial<KeySettings> {
  /** Generated with newKeyId() when omitted. */
  id?: string;
  name: string;
  keyHash: string;
  keyPrefix: string;
  source: KeySource;
}

/** Fields left undefined are unchanged; `null` clears a setting. */
export type AppKeyPatch = Partial<KeySettings>;

/** A key declared in config.json. Omitted settings are reset to their defaults on every sync. */
export interface ConfigKeyEntry extends Partial<KeySettings> {
  name: string;
  keyHash: string;
  keyPrefix: string;
}

const ID_BYTES = 12;
/** ceil(96 / log2(62)) = 17. */
const ID_DIGITS = 17;

/** A database id for a key, e.g. `key_4fZ0c...`; random, so ids reveal neither order nor count. */
export function newKeyId(): string {
  return 'key_' + randomBase62(ID_BYTES, ID_DIGITS);
}

const DEFAULT_SETTINGS: Readonly<KeySettings> = Object.freeze({
  enabled: true,
  expiresAt: null,
  models: null,
  rpm: null,
  tpm: null,
  rpd: null,
  budgetTokens: null,
  budgetUsd: null,
  budgetPeriod: null,
  botDesc: null,
  personaMode: null,
  defaults: null,
  maxTokensCeiling: null,
  allowOrigin: null,
  endpoints: null,
  metadata: null,
  memory: null,
  memoryMaxTokens: null,
  memoryMaxTurns: null,
  memoryTtl: null,
  cacheTtl: null,
  cacheGroup: null,
});

const SETTING_NAMES = Object.keys(DEFAULT_SETTINGS) as Array<keyof KeySettings>;
/** 3 bound values per entry in touchLastUsed, plus 1 in the IN list: 200 × 4 stays under SQLite's 999. */
const KEYS_PER_STATEMENT = 200;
/** Serialises concurrent config syncs from several gateway instances sharing one PostgreSQL. */
const CONFIG_SYNC_LOCK = 0x6f61_6b65_7973; // 'oakeys'

type SettingColumns = Omit<Updateable<AppKeysTable>, 'id' | 'name' | 'key_hash' | 'key_prefix' | 'source'>;

export class KeysRepository {
  readonly #database: Database;

  constructor(database: Database) {
    this.#database = database;
  }

  async create(input: NewAppKey): Promise<AppKeyRow> {
    assertHashAndPrefix(input.keyHash, input.keyPrefix);
    const now = new Date().toISOString();
    const values: Insertable<AppKeysTable> = {
      ...settingColumns(withDefaults(input)),
      id: input.id ?? newKeyId(),
      name: input.name,
      key_hash: input.keyHash,
      key_prefix: input.keyPrefix,
      source: input.source,
      created_at: now,
      updated_at: now,
    };
    try {
      const row = await this.#database.db.insertInto('app_keys').values(values).returningAll().executeTakeFirstOrThrow();
      return toAppKeyRow(row);
    } catch (error) {
      throw keyWriteError(error, input.name, 'create app key');
    }
  }

  /** Ordered by name in JavaScript string order (sorted here: SQL collations differ between backends). */
  async list(): Promise<AppKeyRow[]> {
    const rows = await this.#run('list app keys', (db) => db.selectFrom('app_keys').selectAll().execute());
    return rows.map(toAppKeyRow).sort((a, b) => compareCodePoints(a.name, b.name));
  }

  getByName(name: string): Promise<AppKeyRow | undefined> {
    return this.#findOne('name', name);
  }

  getById(id: string): Promise<AppKeyRow | undefined> {
    return this.#findOne('id', id);
  }

  /** Returns disabled and expired keys too: the caller decides, and can say why it refused. */
  findByHash(keyHash: string): Promise<AppKeyRow | undefined> {
    return this.#findOne('key_hash', keyHash);
  }

  /** Throws StorageError 'not_found' when no key has this name. */
  async update(name: string, patch: AppKeyPatch): Promise<AppKeyRow> {
    const columns = settingColumns(patch);
    if (Object.keys(columns).length === 0) return this.#require(name, await this.getByName(name));
    const row = await this.#run('update app key', (db) =>
      db
        .updateTable('app_keys')
        .set({ ...columns, updated_at: new Date().toISOString() })
        .where('name', '=', name)
        .returningAll()
        .executeTakeFirst(),
    );
    return toAppKeyRow(this.#require(name, row));
  }

  /** Rotation: the old secret stops matching as soon as this resolves. */
  async replaceSecret(name: string, newHash: string, newPrefix: string): Promise<AppKeyRow> {
    assertHashAndPrefix(newHash, newPrefix);
    try {
      const row = await this.#database.db
        .updateTable('app_keys')
        .set({ key_hash: newHash, key_prefix: newPrefix, updated_at: new Date().toISOString() })
        .where('name', '=', name)
        .returningAll()
        .executeTakeFirst();
      return toAppKeyRow(this.#require(name, row));
    } catch (error) {
      throw keyWriteError(error, name, 'rotate app key');
    }
  }

  /** Resolves false when no key had this name. Usage records keep the key's id and name. */
  async delete(name: string): Promise<boolean> {
    const result = await this.#run('delete app key', (db) =>
      db.deleteFrom('app_keys').where('name', '=', name).executeTakeFirst(),
    );
    return result.numDeletedRows > 0n;
  }

  /**
   * Records when keys were last used, one UPDATE per 200 keys. Never moves a timestamp back, so
   * gateway instances flushing out of order on a shared PostgreSQL cannot regress it.
   */
  async touchLastUsed(entries: Array<{ id: string; at: Date }>): Promise<void> {
    const latest = new Map<string, string>();
    for (const { id, at } of entries) {
      const iso = at.toISOString();
      const seen = latest.get(id);
      if (seen === undefined || seen < iso) latest.set(id, iso);
    }
    const pairs = [...latest];
    for (let start = 0; start < pairs.length; start += KEYS_PER_STATEMENT) {
      const chunk = pairs.slice(start, start + KEYS_PER_STATEMENT);
      const cases = chunk.map(
        ([id, iso]) => sql`when id = ${id} and (last_used_at is null or last_used_at < ${iso}) then ${iso}`,
      );
      await this.#run('record key use', (db) =>
        db
          .updateTable('app_keys')
          .set({ last_used_at: sql<string>`case ${sql.join(cases, sql` `)} else last_used_at end` })
          .where('id', 'in', chunk.map(([id]) => id))
          .execute(),
      );
    }
  }

  /**
   * Makes the config-sourced keys exactly `entries`, in one transaction: inserts new names,
   * updates changed ones (keeping id, created_at, last_used_at), deletes config keys no longer
   * listed. Keys created by the CLI or admin API are never touched; a config entry reusing one
   * of their names is a 'conflict'.
   */
  async upsertFromConfig(entries: ConfigKeyEntry[]): Promise<void> {
    const wanted = new Map<string, ConfigKeyEntry>();
    for (const entry of entries) {
      assertHashAndPrefix(entry.keyHash, entry.keyPrefix);
      if (wanted.has(entry.name)) throw new StorageError('conflict', `config declares app key "${entry.name}" twice`);
      wanted.set(entry.name, entry);
    }
    const kind = this.#database.kind;
    await this.#run('sync app keys from config', (db) =>
      db.transaction().execute(async (trx) => {
        if (kind === 'postgres') await sql`select pg_advisory_xact_lock(${sql.lit(CONFIG_SYNC_LOCK)})`.execute(trx);
        const existing = await trx.selectFrom('app_keys').selectAll().execute();
        const stale = existing.filter((row) => row.source === 'config' && !wanted.has(row.name)).map((row) => row.id);
        // Deletes first, so a key renamed in config can take over its old hash.
        for (let start = 0; start < stale.length; start += KEYS_PER_STATEMENT) {
          await trx.deleteFrom('app_keys').where('id', 'in', stale.slice(start, start + KEYS_PER_STATEMENT)).execute();
        }
        const byName = new Map(existing.map((row) => [row.name, row]));
        const now = new Date().toISOString();
        for (const entry of wanted.values()) {
          const columns = { ...settingColumns(withDefaults(entry)), key_hash: entry.keyHash, key_prefix: entry.keyPrefix };
          const current = byName.get(entry.name);
          if (current === undefined) {
            const values = { ...columns, id: newKeyId(), name: entry.name, source: 'config', created_at: now, updated_at: now };
            await trx.insertInto('app_keys').values(values).execute();
          } else if (current.source !== 'config') {
            throw new StorageError(
              'conflict',
              `config key "${entry.name}" clashes with a key of the same name created by ${current.source}; rename one of them`,
            );
          } else if (differs(current, columns)) {
            await trx.updateTable('app_keys').set({ ...columns, updated_at: now }).where('id', '=', current.id).execute();
          }
        }
      }),
    );
  }

  /**
   * Changes whenever a key is added, changed or removed: lets every gateway instance notice
   * edits made by the CLI or another instance with one tiny query instead of reloading all keys.
   */
  async fingerprint(): Promise<string> {
    const row = await this.#run('read app key fingerprint', (db) =>
      db.selectFrom('app_keys').select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.max('updated_at').as('m')]).executeTakeFirst(),
    );
    return `${Number(row?.n ?? 0)}:${String(row?.m ?? '')}`;
  }

  async #findOne(column: 'id' | 'name' | 'key_hash', value: string): Promise<AppKeyRow | undefined> {
    const row = await this.#run('read app key', (db) =>
      db.selectFrom('app_keys').selectAll().where(column, '=', value).executeTakeFirst(),
    );
    return row === undefined ? undefined : toAppKeyRow(row);
  }

  #require<T>(name: string, row: T | undefined): T {
    if (row === undefined) throw new StorageError('not_found', `no app key named "${name}"`);
    return row;
  }

  async #run<T>(action: string, query: (db: Database['db']) => Promise<T>): Promise<T> {
    try {
      return await query(this.#database.db);
    } catch (error) {
      throw toStorageError(error, action);
    }
  }
}

/**
 * Guards the one promise this layer makes: no secret at rest. A 64-hex hash and a short prefix
 * cannot hold a 46-character secret, so passing the secret by mistake fails loudly here.
 */
function assertHashAndPrefix(keyHash: string, prefix: string): void {
  if (!/^[0-9a-f]{64}$/.test(keyHash)) throw new TypeError('keyHash must be a lowercase SHA-256 hex digest');
  if (prefix.length > 12) throw new TypeError('keyPrefix must be at most 12 characters');
}

function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function keyWriteError(error: unknown, name: string, action: string): StorageError {
  if (!isUniqueViolation(error)) return toStorageError(error, action);
  const text = `${(error as Error).message} ${(error as { constraint?: string }).constraint ?? ''}`;
  const message = text.includes('key_hash')
    ? `cannot ${action} "${name}": another key already has this secret`
    : /app_keys\.id|app_keys_pkey/.test(text)
      ? `cannot ${action} "${name}": an app key with this id already exists`
      : `cannot ${action} "${name}": an app key with this name already exists`;
  return new StorageError('conflict', message, { cause: error });
}

function withDefaults(settings: Partial<KeySettings>): KeySettings {
  const full: Record<string, unknown> = { ...DEFAULT_SETTINGS };
  for (const name of SETTING_NAMES) {
    if (settings[name] !== undefined) full[name] = settings[name];
  }
  return full as unknown as KeySettings;
}

/** The columns for the settings that are present (undefined → absent, null → SQL NULL). */
function settingColumns(settings: Partial<KeySettings>): SettingColumns {
  const columns: SettingColumns = {};
  const s = settings;
  if (s.enabled !== undefined) columns.enabled = s.enabled ? 1 : 0;
  if (s.expiresAt !== undefined) columns.expires_at = s.expiresAt?.toISOString() ?? null;
  if (s.models !== undefined) columns.models = toJson(s.models);
  if (s.rpm !== undefined) columns.rpm = s.rpm;
  if (s.tpm !== undefined) columns.tpm = s.tpm;
  if (s.rpd !== undefined) columns.rpd = s.rpd;
  if (s.budgetTokens !== undefined) columns.budget_tokens = s.budgetTokens;
  if (s.budgetUsd !== undefined) columns.budget_usd = s.budgetUsd;
  if (s.budgetPeriod !== undefined) columns.budget_period = s.budgetPeriod;
  if (s.botDesc !== undefined) columns.bot_desc = s.botDesc;
  if (s.personaMode !== undefined) columns.persona_mode = s.personaMode;
  if (s.defaults !== undefined) columns.defaults = toJson(s.defaults);
  if (s.maxTokensCeiling !== undefined) columns.max_tokens_ceiling = s.maxTokensCeiling;
  if (s.allowOrigin !== undefined) columns.allow_origin = toJson(s.allowOrigin);
  if (s.endpoints !== undefined) columns.endpoints = toJson(s.endpoints);
  if (s.metadata !== undefined) columns.metadata = toJson(s.metadata);
  if (s.memory !== undefined) columns.memory = s.memory === null ? null : s.memory ? 1 : 0;
  if (s.memoryMaxTokens !== undefined) columns.memory_max_tokens = s.memoryMaxTokens;
  if (s.memoryMaxTurns !== undefined) columns.memory_max_turns = s.memoryMaxTurns;
  if (s.memoryTtl !== undefined) columns.memory_ttl = s.memoryTtl;
  if (s.cacheTtl !== undefined) columns.cache_ttl = s.cacheTtl;
  if (s.cacheGroup !== undefined) columns.cache_group = s.cacheGroup;
  return columns;
}

function differs(current: Selectable<AppKeysTable>, columns: Record<string, unknown>): boolean {
  return Object.entries(columns).some(([column, value]) => current[column as keyof AppKeysTable] !== value);
}

function toJson(value: unknown): string | null {
  return value === null ? null : JSON.stringify(value);
}

function fromJson<T>(row: Selectable<AppKeysTable>, column: 'models' | 'defaults' | 'allow_origin' | 'endpoints' | 'metadata'): T | null {
  const text = row[column];
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new StorageError('unavailable', `app key "${row.name}" has unreadable JSON in ${column}`, { cause: error });
  }
}

function toDate(iso: string | null): Date | null {
  return iso === null ? null : new Date(iso);
}

function toAppKeyRow(row: Selectable<AppKeysTable>): AppKeyRow {
  return {
    id: row.id,
    name: row.name,
    keyHash: row.key_hash,
    keyPrefix: row.key_prefix,
    source: row.source as KeySource,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    lastUsedAt: toDate(row.last_used_at),
    enabled: row.enabled !== 0,
    expiresAt: toDate(row.expires_at),
    models: fromJson<string[]>(row, 'models'),
    rpm: row.rpm,
    tpm: row.tpm,
    rpd: row.rpd,
    budgetTokens: row.budget_tokens,
    budgetUsd: row.budget_usd,
    budgetPeriod: row.budget_period as BudgetPeriod | null,
    botDesc: row.bot_desc,
    personaMode: row.persona_mode as PersonaMode | null,
    defaults: fromJson<KeyDefaults>(row, 'defaults'),
    maxTokensCeiling: row.max_tokens_ceiling,
    allowOrigin: fromJson<string[]>(row, 'allow_origin'),
    endpoints: fromJson<string[]>(row, 'endpoints'),
    metadata: fromJson<Record<string, unknown>>(row, 'metadata'),
    memory: row.memory === null ? null : row.memory !== 0,
    memoryMaxTokens: row.memory_max_tokens,
    memoryMaxTurns: row.memory_max_turns,
    memoryTtl: row.memory_ttl,
    cacheTtl: row.cache_ttl,
    cacheGroup: row.cache_group,
  };
}
