// Usage at scale (issue 14): fills 10 M raw usage records and their hourly rollup in SQLite and in
// PostgreSQL, then times what the console, the CLI and budgets ask: the 30-day overview (totals
// per day, top keys, top models) and a key's budget baseline, through UsageRepository, next to
// the same questions asked of the raw rows alone (the code before the rollup). Not part of
// `npm test` or `npm run bench`; run it by hand on a quiet machine (minutes, ~5 GB of disk):
//
//   node --import tsx bench/usage-scale.ts [--rows 10000000] [--days 30] [--keys 200]
//        [--only sqlite|postgres] [--pg-url postgres://postgres@127.0.0.1:5432/test] [--keep]
//
// PostgreSQL gets a database of its own (usage_scale_bench, dropped at the end); SQLite a file in
// the temp directory (removed at the end). Figures go to stdout as Markdown (bench/RESULTS.md).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { REFUSED_BEFORE_UPSTREAM } from '../src/errors/index.js';
import { openDatabase, type Database } from '../src/storage/database.js';
import { backfillUsageRollup } from '../src/storage/migrations/0004-usage-rollup.js';
import type { Schema } from '../src/storage/schema.js';
import { UsageRepository, type UsageRecord, type UsageReportFilter, type UsageTotals } from '../src/storage/usage-repository.js';
import { seededRandom as random } from '../test/helpers/seeded-random.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000000' },
    days: { type: 'string', default: '30' },
    keys: { type: 'string', default: '200' },
    only: { type: 'string' },
    'pg-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    // Leave the SQLite file and the PostgreSQL database behind, to look at query plans.
    keep: { type: 'boolean', default: false },
  },
});
const ROWS = Number(args.rows);
const DAYS = Number(args.days);
const KEY_COUNT = Number(args.keys);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.now();
const PG_DATABASE = 'usage_scale_bench';
const RUNS = 7;

// ---- data: deterministic, shaped like a busy gateway -------------------------------------------

const MODELS = ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano', 'o3', 'o3-mini', 'o4-mini', 'text-embedding-3-small', 'text-embedding-3-large', 'claude-sonnet-4-5', 'local-llama'];
const PRICES: Record<string, [number, number] | null> = { 'gpt-4o-mini': [0.15, 0.6], 'gpt-4o': [2.5, 10], 'gpt-4.1': [2, 8], 'gpt-4.1-mini': [0.4, 1.6], 'gpt-4.1-nano': [0.1, 0.4], o3: [2, 8], 'o3-mini': [1.1, 4.4], 'o4-mini': [1.1, 4.4], 'text-embedding-3-small': [0.02, 0], 'text-embedding-3-large': [0.13, 0], 'claude-sonnet-4-5': [3, 15], 'local-llama': null };
const UPSTREAMS = ['openai-a', 'openai-b', 'azure-eu', 'anthropic'];
const ERRORS: Array<[string, number]> = [['upstream_429', 429], ['upstream_500', 500], ['upstream_timeout', 504], ['rate_limit_exceeded', 429], ['budget_exceeded', 429]];
const ROUTES = ['/v1/chat/completions', '/v1/responses', '/api/chat'];

interface Caller { id: string | null; name: string; models: string[] }

/** 200 app keys (a few busy, many quiet: Zipf weights), each using one to three models; 5 % of traffic from access tokens. */
function callers(next: () => number): { list: Caller[]; cdf: number[] } {
  const list: Caller[] = [];
  for (let k = 0; k < KEY_COUNT; k++) {
    const models = Array.from({ length: 1 + Math.floor(next() * 3) }, () => MODELS[Math.floor(next() * MODELS.length)] as string);
    list.push({ id: `key_${String(k).padStart(4, '0')}`, name: `app-${k}`, models });
  }
  for (let t = 1; t <= 3; t++) list.push({ id: null, name: `access_token#${t}`, models: ['gpt-4o-mini', 'gpt-4o'] });
  const weights = list.map((caller, i) => (caller.id === null ? (0.05 / 3) * harmonic(KEY_COUNT) / 0.95 : 1 / (i + 1)));
  const total = weights.reduce((a, b) => a + b, 0);
  let sum = 0;
  return { list, cdf: weights.map((w) => (sum += w / total)) };
}

function harmonic(n: number): number {
  let h = 0;
  for (let i = 1; i <= n; i++) h += 1 / i;
  return h;
}

function makeGenerator(seed: number): (i: number) => UsageRecord {
  const next = random(seed);
  const { list, cdf } = callers(next);
  const pick = (): Caller => {
    const r = next();
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < r) lo = mid + 1;
      else hi = mid;
    }
    return list[lo] as Caller;
  };
  const start = NOW - DAYS * DAY;
  const step = (DAYS * DAY) / ROWS;
  return (i) => {
    const caller = pick();
    const roll = next();
    const model = caller.models[roll < 0.7 ? 0 : roll < 0.9 ? 1 % caller.models.length : 2 % caller.models.length] as string;
    const home = model.startsWith('claude') ? 3 : MODELS.indexOf(model) % 3;
    const upstream = UPSTREAMS[next() < 0.9 ? home : (home + 1) % 3] as string;
    const failed = next() < 0.03 ? ERRORS[Math.floor(next() * ERRORS.length)] : undefined;
    const refused = failed !== undefined && !failed[0].startsWith('upstream');
    const prompt = refused ? 0 : Math.floor(100 + next() * next() * 6000);
    const completion = refused || model.startsWith('text-embedding') ? 0 : Math.floor(next() * next() * 1500);
    const cached = next() < 0.3 ? Math.floor(prompt * next() * 0.8) : 0;
    const reasoning = model.startsWith('o') ? Math.floor(completion * 0.6) : 0;
    const price = PRICES[model];
    return {
      ts: new Date(Math.floor(start + i * step + next() * step)),
      requestId: `req_${i.toString(36)}`,
      keyId: caller.id,
      keyName: caller.name,
      route: ROUTES[Math.floor(next() * next() * ROUTES.length)] as string,
      model,
      upstream: refused ? null : upstream,
      status: failed?.[1] ?? 200,
      promptTokens: prompt,
      completionTokens: completion,
      cachedTokens: cached,
      reasoningTokens: reasoning,
      totalTokens: prompt + completion,
      costUsd: price === null || price === undefined ? null : (prompt * price[0] + completion * price[1]) / 1e6,
      latencyMs: 50 + next() * 4000,
      ttfbMs: next() < 0.5 ? 20 + next() * 800 : null,
      aborted: next() < 0.01,
      usageSource: 'upstream',
      errorCode: failed?.[0] ?? null,
    };
  };
}

const COLUMNS = ['ts', 'request_id', 'key_id', 'key_name', 'route', 'model', 'upstream', 'status', 'prompt_tokens', 'completion_tokens', 'cached_tokens', 'reasoning_tokens', 'total_tokens', 'cost_usd', 'latency_ms', 'ttfb_ms', 'aborted', 'usage_source', 'error_code'];
const PG_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'int4', 'int4', 'int4', 'int4', 'int4', 'int4', 'float8', 'float8', 'float8', 'int4', 'text', 'text'];

function values(r: UsageRecord): Array<string | number | null> {
  return [r.ts.toISOString(), r.requestId, r.keyId, r.keyName, r.route, r.model, r.upstream, r.status, r.promptTokens, r.completionTokens, r.cachedTokens, r.reasoningTokens, r.totalTokens, r.costUsd, r.latencyMs, r.ttfbMs, r.aborted ? 1 : 0, r.usageSource, r.errorCode];
}

// ---- filling --------------------------------------------------------------------------------------

const RAW_INDEXES = [
  ['usage_records_key_id_ts_idx', 'usage_records (key_id, ts)'],
  ['usage_records_ts_idx', 'usage_records (ts)'],
];

/**
 * The bench's own long statements (index builds, VACUUM, the raw-row questions) go through
 * `slow`: on PostgreSQL a pool without the gateway's 10 s query timeout.
 */
interface Slow {
  db: Kysely<Schema>;
  pool?: pg.Pool;
}

/** Raw rows only, as fast as each database takes them (indexes built after); the rollups come from the migration's backfill. */
async function fill(database: Database, slow: Slow): Promise<void> {
  for (const [name] of RAW_INDEXES) await sql`drop index ${sql.id(name as string)}`.execute(database.db);
  const generate = makeGenerator(20261203);
  const progress = (done: number) => process.stderr.write(`\r  ${database.kind}: ${(done / 1e6).toFixed(1)} M rows`);
  if (database.kind === 'sqlite') {
    const sqlite = database.sqlite;
    sqlite.pragma('synchronous = OFF');
    const perStatement = 500;
    const statement = sqlite.prepare(`insert into usage_records (${COLUMNS.join(', ')}) values ${Array.from({ length: perStatement }, () => `(${COLUMNS.map(() => '?').join(', ')})`).join(', ')}`);
    const single = sqlite.prepare(`insert into usage_records (${COLUMNS.join(', ')}) values (${COLUMNS.map(() => '?').join(', ')})`);
    const chunk = sqlite.transaction((from: number, to: number) => {
      let i = from;
      for (; i + perStatement <= to; i += perStatement) {
        const params: Array<string | number | null> = [];
        for (let j = i; j < i + perStatement; j++) params.push(...values(generate(j)));
        statement.run(params);
      }
      for (; i < to; i++) single.run(values(generate(i)));
    });
    for (let i = 0; i < ROWS; i += 100_000) {
      chunk(i, Math.min(ROWS, i + 100_000));
      progress(Math.min(ROWS, i + 100_000));
    }
  } else {
    const client = await (slow.pool as pg.Pool).connect();
    try {
      await client.query('set synchronous_commit = off');
      const text = `insert into usage_records (${COLUMNS.join(', ')}) select * from unnest(${PG_TYPES.map((type, i) => `$${i + 1}::${type}[]`).join(', ')})`;
      for (let i = 0; i < ROWS; i += 50_000) {
        const to = Math.min(ROWS, i + 50_000);
        const columns: Array<Array<string | number | null>> = COLUMNS.map(() => []);
        for (let j = i; j < to; j++) values(generate(j)).forEach((value, c) => (columns[c] as Array<string | number | null>).push(value));
        await client.query(text, columns);
        progress(to);
      }
      await client.query('reset synchronous_commit');
    } finally {
      client.release();
    }
  }
  process.stderr.write('\n');
  for (const [name, on] of RAW_INDEXES) await sql.raw(`create index ${name} on ${on}`).execute(slow.db);
  if (database.kind === 'sqlite') database.sqlite.pragma('synchronous = NORMAL');
}

// ---- the questions, old and new ---------------------------------------------------------------------

/** The budget baseline as computed before the rollup (raw rows only). */
async function rawTotals(db: Kysely<Schema>, keyId: string, since: Date | undefined): Promise<UsageTotals> {
  let query = db
    .selectFrom('usage_records')
    .select((eb) => [eb.fn.countAll().as('requests'), eb.fn.coalesce(eb.fn.sum('total_tokens'), sql<number>`0`).as('tokens'), eb.fn.coalesce(eb.fn.sum('cost_usd'), sql<number>`0`).as('cost_usd')])
    .where('key_id', '=', keyId)
    .where((eb) => eb.or([eb('error_code', 'is', null), eb('error_code', 'not in', [...REFUSED_BEFORE_UPSTREAM])]));
  if (since !== undefined) query = query.where('ts', '>=', since.toISOString());
  const row = await query.executeTakeFirstOrThrow();
  return { requests: Number(row.requests), tokens: Number(row.tokens), costUsd: Number(row.cost_usd) };
}

const RAW_GROUPS = { model: `coalesce(model, '(none)')`, key: `coalesce(key_name, '(none)')`, upstream: `coalesce(upstream, '(none)')`, day: 'substr(ts, 1, 10)', hour: 'substr(ts, 1, 13)' } as const;

/** A report as computed before the rollup (raw rows only); requests per group are enough to compare. */
async function rawReport(db: Kysely<Schema>, filter: UsageReportFilter): Promise<Map<string, number>> {
  const group = sql.raw(RAW_GROUPS[filter.by]);
  const { rows } = await sql<{ bucket: string; requests: number }>`select ${group} as bucket, count(*) as requests from usage_records where ts >= ${filter.since?.toISOString()} group by ${group}`.execute(db);
  return new Map(rows.map((row) => [row.bucket, Number(row.requests)]));
}

async function time<T>(fn: () => Promise<T>, runs = RUNS): Promise<{ result: T; median: number; max: number; first: number }> {
  const times: number[] = [];
  let result!: T;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    result = await fn();
    times.push(performance.now() - started);
  }
  const first = times[0] as number;
  const sorted = [...times].sort((a, b) => a - b);
  return { result, median: sorted[Math.floor(sorted.length / 2)] as number, max: sorted.at(-1) as number, first };
}

/** The usage insert as it was before the rollups: the raw rows alone, in one transaction or statement. */
async function insertRawOnly(database: Database, records: UsageRecord[]): Promise<void> {
  if (database.kind === 'sqlite') {
    const statement = database.sqlite.prepare(`insert into usage_records (${COLUMNS.join(', ')}) values (${COLUMNS.map(() => '?').join(', ')})`);
    database.sqlite.transaction(() => {
      for (const record of records) statement.run(values(record));
    })();
  } else {
    const columns: Array<Array<string | number | null>> = COLUMNS.map(() => []);
    for (const record of records) values(record).forEach((value, c) => (columns[c] as Array<string | number | null>).push(value));
    await database.pool.query(`insert into usage_records (${COLUMNS.join(', ')}) select * from unnest(${PG_TYPES.map((type, i) => `$${i + 1}::${type}[]`).join(', ')})`, columns);
  }
}

const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const count = (value: number) => value.toLocaleString('en-US');

async function measure(database: Database, label: string, sizeOf: () => Promise<string>, slow: Slow = { db: database.db }): Promise<string[]> {
  const db = database.db;
  const usage = new UsageRepository(database);
  const lines: string[] = [];
  const filled = performance.now();
  await fill(database, slow);
  const fillSeconds = (performance.now() - filled) / 1000;
  const backfillStarted = performance.now();
  await backfillUsageRollup(db as unknown as Kysely<unknown>);
  const backfillSeconds = (performance.now() - backfillStarted) / 1000;
  // The gateway's own pool, query timeout included: the migration's backfill must fit in it.
  // Autovacuum would get there after a load this size; without it no index-only scans.
  if (database.kind === 'postgres') await sql`vacuum analyze`.execute(slow.db);
  const hourlyRows = Number((await db.selectFrom('usage_hourly').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const dailyRows = Number((await db.selectFrom('usage_daily').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const top = await db.selectFrom('usage_hourly').select(['key_id', sql<number>`sum(requests)`.as('n')]).where('key_id', 'is not', null).groupBy('key_id').orderBy(sql`sum(requests)`, 'desc').limit(1).executeTakeFirstOrThrow();
  const keyId = top.key_id as string;

  const since = new Date(NOW - 30 * DAY);
  const overview = await time(async () => {
    const [days, keys, models] = await Promise.all((['day', 'key', 'model'] as const).map((by) => usage.report({ by, since })));
    return { days: days!, keys: keys!, models: models! };
  });
  const parts: Array<Awaited<ReturnType<typeof time<unknown>>>> = [];
  for (const by of ['day', 'key', 'model'] as const) parts.push(await time(() => usage.report({ by, since })));
  const rawOverview = await time(() => Promise.all((['day', 'key', 'model'] as const).map((by) => rawReport(slow.db, { by, since }))), 1);
  // The rollup answer must be the raw one.
  (['days', 'keys', 'models'] as const).forEach((name, i) => {
    const raw = rawOverview.result[i] as Map<string, number>;
    const rolled = overview.result[name];
    if (rolled.length !== raw.size || rolled.some((row) => raw.get(row.group) !== row.requests)) throw new Error(`${label}: overview by ${name} differs from the raw rows`);
  });

  const month = new Date(Date.UTC(new Date(NOW).getUTCFullYear(), new Date(NOW).getUTCMonth(), 1));
  const day = new Date(Math.floor(NOW / DAY) * DAY);
  const baselines: Array<[string, Date | undefined]> = [['total', undefined], ['month', month], ['day', day]];
  const baselineRows: string[] = [];
  for (const [period, from] of baselines) {
    const rolled = await time(() => usage.totalsSince(keyId, from, { excludeRefused: true }));
    const raw = await time(() => rawTotals(slow.db, keyId, from), 3);
    if (rolled.result.requests !== raw.result.requests || rolled.result.tokens !== raw.result.tokens) throw new Error(`${label}: ${period} baseline differs from the raw rows`);
    baselineRows.push(`| budget baseline, busiest key (${count(rolled.result.requests)} requests), period ${period} | ${ms(rolled.median)} | ${ms(rolled.max)} | ${ms(raw.median)} |`);
  }

  // The writer's flush (500 records of the hour under way, raw rows + rollup upsert) and one retention statement.
  const generate = makeGenerator(7);
  let n = 0;
  const batch = () => Array.from({ length: 500 }, () => ({ ...generate(ROWS - 1), ts: new Date(NOW), requestId: `flush_${n++}` }));
  const flush = await time(() => usage.insertBatch(batch()), 20);
  const rawOnly = await time(() => insertRawOnly(database, batch()), 20);
  const retention = await time(() => usage.deleteRawBefore(new Date(NOW - 25 * DAY)), 5);

  lines.push(`#### ${label}`, '');
  lines.push(`${count(ROWS)} raw rows over ${DAYS} days (${count(KEY_COUNT)} app keys + 3 access tokens, ${MODELS.length} models, ${UPSTREAMS.length} upstreams, 3 % errors) → ${count(hourlyRows)} hourly and ${count(dailyRows)} daily rollup rows; ${await sizeOf()}. Fill ${fillSeconds.toFixed(0)} s (bulk, indexes after); migration backfill of both rollups from the raw rows ${backfillSeconds.toFixed(1)} s.`, '');
  lines.push('| question | rollup + raw: median ms | max ms | raw rows only (before): ms |', '|---|--:|--:|--:|');
  lines.push(`| 30-day overview: totals per day + per key + per model (3 reports) | ${ms(overview.median)} | ${ms(overview.max)} | ${ms(rawOverview.median)} |`);
  (['day', 'key', 'model'] as const).forEach((by, i) => lines.push(`| — report by ${by}, 30 days (${count((overview.result as Record<string, unknown[]>)[`${by}s`]!.length)} rows) | ${ms(parts[i]!.median)} | ${ms(parts[i]!.max)} | |`));
  lines.push(...baselineRows);
  lines.push(`| usage writer flush: 500 records + their rollup upserts, one transaction | ${ms(flush.median)} | ${ms(flush.max)} | ${ms(rawOnly.median)} (raw rows alone) |`);
  lines.push(`| retention: one DELETE of ${count(retention.result)} rows | ${ms(retention.median)} | ${ms(retention.max)} | |`, '');
  return lines;
}

async function onSqlite(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'usage-scale-'));
  const path = join(dir, 'usage.sqlite');
  const database = await openDatabase(`sqlite:${path}`);
  try {
    return await measure(database, 'SQLite (better-sqlite3, WAL, synchronous=NORMAL, default cache)', async () => `file ${(statSync(path).size / 2 ** 30).toFixed(2)} GiB`);
  } finally {
    await database.close();
    if (args.keep) process.stderr.write(`kept ${path}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function onPostgres(): Promise<string[]> {
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: args['pg-url'] });
    await client.connect();
    try {
      return await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await admin(`drop database if exists ${PG_DATABASE}`);
  await admin(`create database ${PG_DATABASE}`);
  const url = new URL(args['pg-url'] as string);
  url.pathname = `/${PG_DATABASE}`;
  const database = await openDatabase(url.toString());
  try {
    const { rows } = await sql<{ version: string; buffers: string; work: string }>`select current_setting('server_version') as version, current_setting('shared_buffers') as buffers, current_setting('work_mem') as work`.execute(database.db);
    const version = rows[0]?.version;
    const settings = `shared_buffers ${rows[0]?.buffers}, work_mem ${rows[0]?.work}`;
    const pool = new pg.Pool({ connectionString: url.toString(), max: 4 });
    const slow = { db: new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) }), pool };
    try {
      return await measure(
        database,
        `PostgreSQL ${version} (loopback, ${settings})`,
        async () => {
          const { rows } = await sql<{ raw: string; rollup: string }>`select pg_size_pretty(pg_total_relation_size('usage_records')) as raw, pg_size_pretty(pg_total_relation_size('usage_hourly') + pg_total_relation_size('usage_daily')) as rollup`.execute(database.db);
          return `raw table + indexes ${rows[0]?.raw}, both rollups + indexes ${rows[0]?.rollup}`;
        },
        slow,
      );
    } finally {
      await slow.db.destroy();
    }
  } finally {
    await database.close();
    if (args.keep) process.stderr.write(`kept database ${PG_DATABASE}\n`);
    else await dropDatabase(admin);
  }
}

/** The pool's backends can take a moment to go after it closed ("being accessed by other users"). */
async function dropDatabase(admin: (statement: string) => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await admin(`drop database if exists ${PG_DATABASE}`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '55006' || attempt === 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

const output = [`### Usage at scale (issue 14) — ${new Date(NOW).toISOString().slice(0, 16)}Z`, '', `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}. \`node --import tsx bench/usage-scale.ts\`; median and max of ${RUNS} runs of each question (the first one cold).`, ''];
// Each section as soon as it is measured, so a later failure loses nothing.
process.stdout.write(`${output.join('\n')}\n`);
if (args.only !== 'postgres') process.stdout.write(`${(await onSqlite()).join('\n')}\n`);
if (args.only !== 'sqlite') process.stdout.write(`${(await onPostgres()).join('\n')}\n`);
