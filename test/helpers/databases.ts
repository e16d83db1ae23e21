import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDatabase } from '../../src/storage/database.js';
import type { Database } from '../../src/storage/database.js';

export type TestDatabase = Database & {
  /** The URL it was opened with, to open the same database again. */
  url: string;
  /** Closes the database and removes it (temp directory or schema). */
  cleanup(): Promise<void>;
};

export interface StorageBackend {
  name: 'sqlite' | 'postgres';
  open(): Promise<TestDatabase>;
}

/**
 * SQLite always; PostgreSQL too when TEST_DATABASE_URL is set. Every open() is a fresh, empty
 * database: a temp file, or a randomly named schema so parallel test files never collide.
 * With TEST_DATABASE_URL set, an unreachable server fails the tests rather than skipping them.
 */
export function storageBackends(): StorageBackend[] {
  const backends: StorageBackend[] = [{ name: 'sqlite', open: openSqlite }];
  // In CI PostgreSQL is there (.ci/run): without its URL the PostgreSQL half fails instead of vanishing.
  const postgres = requirePostgres();
  if (postgres.skip === false) backends.push({ name: 'postgres', open: postgres.open });
  return backends;
}

/** PostgreSQL for a test that cannot run without it, and whether that test skips here. */
export type RequiredPostgres = StorageBackend & {
  /** A reason to pass as `skip`, or false when the tests run (and fail without a server). */
  skip: string | false;
};

/**
 * PostgreSQL from TEST_DATABASE_URL, for tests that need it. Unset, the tests skip saying so —
 * except in CI (CI=true), which always provides the server: there they run and fail, naming the
 * variable, so a CI that lost it cannot pass by skipping them.
 */
export function requirePostgres(env: NodeJS.ProcessEnv = process.env): RequiredPostgres {
  const pgUrl = env['TEST_DATABASE_URL'];
  if (pgUrl !== undefined && pgUrl !== '') return { name: 'postgres', open: () => openPostgres(pgUrl), skip: false };
  const inCi = env['CI'] === 'true';
  return {
    name: 'postgres',
    open: () => Promise.reject(new Error('TEST_DATABASE_URL is not set, but CI=true: CI provides PostgreSQL, so this test fails rather than skips (see .ci/run)')),
    skip: inCi ? false : 'needs PostgreSQL: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run it',
  };
}

async function openSqlite(): Promise<TestDatabase> {
  const dir = await mkdtemp(join(tmpdir(), 'openai-api-db-'));
  const url = `sqlite:${join(dir, 'gateway.sqlite')}`;
  const removeDir = () => rm(dir, { recursive: true, force: true });
  const database = await openDatabase(url).catch(async (error: unknown) => {
    await removeDir();
    throw error;
  });
  return {
    ...database,
    url,
    async cleanup() {
      await database.close();
      await removeDir();
    },
  };
}

async function openPostgres(baseUrl: string): Promise<TestDatabase> {
  const schema = `test_${randomBytes(8).toString('hex')}`;
  await adminQuery(baseUrl, `create schema "${schema}"`);
  const dropSchema = () => adminQuery(baseUrl, `drop schema if exists "${schema}" cascade`);
  const url = withSearchPath(baseUrl, schema);
  const database = await openDatabase(url).catch(async (error: unknown) => {
    await dropSchema();
    throw error;
  });
  return {
    ...database,
    url,
    async cleanup() {
      await database.close();
      await dropSchema();
    },
  };
}

/** Every pooled connection starts with `search_path=<schema>` (libpq `options` parameter). */
function withSearchPath(baseUrl: string, schema: string): string {
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

async function adminQuery(baseUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
