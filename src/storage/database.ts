import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { migrations } from './migrations/index.js';
import type { Schema } from './schema.js';
import { StorageError } from './storage-error.js';

export type DatabaseKind = 'sqlite' | 'postgres';

interface DatabaseClient {
  db: Kysely<Schema>;
  /** Idempotent; waits for in-flight queries on PostgreSQL. */
  close(): Promise<void>;
  /** Resolves when the database answers a trivial query; rejects with StorageError 'unavailable'. */
  ping(): Promise<void>;
}

/**
 * The raw driver handles are there for the few hot statements that skip Kysely's query building
 * (the usage insert); everything else goes through `db`.
 */
export interface SqliteDatabase extends DatabaseClient {
  kind: 'sqlite';
  /**
   * The single connection Kysely runs on. Use it only inside `db.connection().execute(…)`, which
   * holds Kysely's connection lock, so a statement never lands inside a transaction Kysely has open.
   */
  sqlite: BetterSqlite3.Database;
}

export interface PostgresDatabase extends DatabaseClient {
  kind: 'postgres';
  /** The pool Kysely uses; `pool.query` takes and returns a connection per call. */
  pool: pg.Pool;
}

export type Database = SqliteDatabase | PostgresDatabase;

/** How long a PostgreSQL connection attempt may take before the pool gives up. */
const PG_CONNECT_TIMEOUT_MS = 5_000;
const PG_POOL_MAX = 10;
/** SQLite waits this long on a lock held by another process (e.g. the CLI) before SQLITE_BUSY. */
const SQLITE_BUSY_TIMEOUT_MS = 5_000;

type Target = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/**
 * Opens the database named by `url` and applies pending migrations.
 *
 * Accepted forms: `sqlite:./relative.sqlite` (relative to the working directory),
 * `sqlite:/abs/path`, `sqlite::memory:`, a bare path ending in `.sqlite` or `.db`, and
 * `postgres://` / `postgresql://` URLs (libpq-style query parameters such as `sslmode` and
 * `options=-c search_path=gateway` are passed to pg). Every failure is a StorageError whose
 * message never contains the URL's password.
 */
export async function openDatabase(url: string): Promise<Database> {
  const target = parseTarget(url);
  const database = target.kind === 'sqlite' ? openSqlite(target.path) : await openPostgres(target.url);
  try {
    await migrate(database);
  } catch (error) {
    await database.close().catch(() => undefined);
    throw error;
  }
  return database;
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`. */
export function redactUrl(url: string): string {
  const scheme = url.indexOf('://');
  if (scheme < 0) return url;
  const rest = url.slice(scheme + 3);
  // The last '@' rather than the first: an unencoded '@' or '/' in a password must not leak.
  // A stray '@' later in the query only makes the redaction cover too much, which is safe.
  const at = rest.lastIndexOf('@');
  if (at < 0) return url;
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return url;
  return `${url.slice(0, scheme + 3)}${userinfo.slice(0, colon)}:***${rest.slice(at)}`;
}

function parseTarget(url: string): Target {
  if (/^postgres(ql)?:\/\//i.test(url)) return { kind: 'postgres', url };
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === ':memory:') return { kind: 'sqlite', path };
    // `sqlite://x` means different things to different tools (SQLAlchemy: relative); refuse to guess.
    if (path === '' || path.startsWith('//')) {
      throw new StorageError(
        'open_failed',
        `cannot open database "${url}": write sqlite:./relative/path.sqlite, sqlite:/absolute/path.sqlite or sqlite::memory:`,
      );
    }
    return { kind: 'sqlite', path: resolve(path) };
  }
  if (/\.(sqlite|db)$/i.test(url)) return { kind: 'sqlite', path: resolve(url) };
  throw new StorageError(
    'open_failed',
    `cannot open database "${redactUrl(url)}": expected sqlite:<path>, a path ending in .sqlite or .db, or a postgres:// URL`,
  );
}

function openSqlite(path: string): Database {
  let sqlite: BetterSqlite3.Database;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    sqlite = new BetterSqlite3(path);
  } catch (error) {
    throw new StorageError('open_failed', `cannot open SQLite database ${path}: ${reasonOf(error)}`, { cause: error });
  }
  try {
    // WAL lets the CLI and reports read while the gateway writes; NORMAL sync is durable under WAL
    // except for the last transactions on power loss, which metering can afford.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    sqlite.pragma('foreign_keys = ON');
  } catch (error) {
    sqlite.close();
    throw new StorageError('open_failed', `cannot open SQLite database ${path}: ${reasonOf(error)}`, { cause: error });
  }
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { ...client(db), kind: 'sqlite', sqlite };
}

async function openPostgres(url: string): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: PG_POOL_MAX,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    // A server that accepts but never answers must not stall usage writes (or key reads) forever.
    query_timeout: 10_000,
    application_name: 'openai-api',
    types: { getTypeParser: typeParser },
  });
  // An idle client dropped by the server (restart, failover) emits 'error' on the pool; unhandled,
  // that would crash the process. The pool discards the client and the next query reconnects.
  pool.on('error', () => undefined);
  const database: PostgresDatabase = { ...client(new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) })), kind: 'postgres', pool };
  try {
    await sql`select 1`.execute(database.db);
  } catch (error) {
    await database.close().catch(() => undefined);
    const reason = scrubPassword(reasonOf(error), url);
    throw new StorageError('open_failed', `cannot connect to PostgreSQL at ${redactUrl(url)}: ${reason}`, {
      cause: error,
    });
  }
  return database;
}

/**
 * int8 (bigint, count(*), sum(integer)) arrives as a string by default because it can exceed
 * 2^53. Our int8 values are token counts and row ids, far below that, so numbers are safe and
 * keep the Schema types honest. Installed per pool, not on pg's global registry.
 */
const typeParser = ((oid: number, format?: 'text' | 'binary') =>
  oid === pg.types.builtins.INT8 && format !== 'binary'
    ? (value: string) => Number(value)
    : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser;

function client(db: Kysely<Schema>): DatabaseClient {
  let closing: Promise<void> | undefined;
  return {
    db,
    close() {
      closing ??= db.destroy();
      return closing;
    },
    async ping() {
      try {
        await sql`select 1`.execute(db);
      } catch (error) {
        throw new StorageError('unavailable', `database did not answer: ${reasonOf(error)}`, { cause: error });
      }
    },
  };
}

async function migrate(database: Database): Promise<void> {
  let migrationTableSchema: string | undefined;
  if (database.kind === 'postgres') {
    // Kysely looks for its bookkeeping tables in every schema unless told which one, so a second
    // gateway schema in the same database would look "already migrated". Pin it to ours.
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(database.db);
    migrationTableSchema = rows[0]?.schema ?? undefined;
    if (migrationTableSchema === undefined) {
      throw new StorageError('migration_failed', 'cannot migrate: no schema on the search_path exists');
    }
  }
  const migrator = new Migrator({
    db: database.db,
    provider: { getMigrations: () => Promise.resolve({ ...migrations }) },
    ...(migrationTableSchema === undefined ? {} : { migrationTableSchema }),
  });
  let { error, results } = await migrator.migrateToLatest();
  // Kysely checks for its tables by reading the catalog of every schema in the database: another
  // schema dropped at that moment (another application, or parallel test fixtures) fails the scan
  // with undefined_schema. Nothing was applied then (each migration is a transaction): try again.
  for (let retry = 0; retry < 3 && error !== undefined && otherSchemaVanished(error, migrationTableSchema); retry++) {
    ({ error, results } = await migrator.migrateToLatest());
  }
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    const where = failed === undefined ? '' : ` in ${failed}`;
    throw new StorageError('migration_failed', `database migration failed${where}: ${reasonOf(error)}`, {
      cause: error,
    });
  }
}

/** A PostgreSQL undefined_schema (3F000) error naming a schema other than ours. */
function otherSchemaVanished(error: unknown, ours: string | undefined): boolean {
  if ((error as { code?: unknown }).code !== '3F000') return false;
  const named = /schema "([^"]+)" does not exist/.exec((error as Error).message)?.[1];
  return named !== undefined && named !== ours;
}

function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    // Node reports a refused dual-stack connect as an AggregateError with an empty message.
    return error.errors.map(reasonOf).join('; ');
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const message = error.message || (typeof code === 'string' ? code : error.name);
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(error);
}

/** Driver messages should never contain the password, but make sure before it reaches a log. */
function scrubPassword(message: string, url: string): string {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password === '' ? message : message.split(password).join('***');
  } catch {
    return message;
  }
}
