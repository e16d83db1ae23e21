import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Migrator, sql } from 'kysely';
import type { Kysely } from 'kysely';
import { REFUSED_BEFORE_UPSTREAM } from '../../../src/errors/catalogue.js';
import { StorageHealth } from '../../../src/metering/storage-health.js';
import type { UsageEvent } from '../../../src/metering/usage-event.js';
import { UsageWriter } from '../../../src/metering/usage-writer.js';
import { createLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/storage/database.js';
import { KeysRepository } from '../../../src/storage/keys-repository.js';
import { backfillUsageRollup } from '../../../src/storage/migrations/0004-usage-rollup.js';
import { migrations } from '../../../src/storage/migrations/index.js';
import type { Schema } from '../../../src/storage/schema.js';
import { splitRange } from '../../../src/storage/usage-rollup.js';
import { UsageRepository } from '../../../src/storage/usage-repository.js';
import type { UsageGroupBy, UsageRecord, UsageReportFilter, UsageReportRow, UsageTotals } from '../../../src/storage/usage-repository.js';
import { storageBackends } from '../../helpers/databases.js';
import type { TestDatabase } from '../../helpers/databases.js';
import { seededRandom as random } from '../../helpers/seeded-random.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const BASE = Date.parse('2031-05-10T00:00:00.000Z');
const KEYS = [['key_a', 'alice'], ['key_b', 'bob'], ['key_c', ''], [null, 'access_token#1'], [null, null]] as const;
const MODELS = ['gpt-4o', 'o3-mini', '', null] as const;
const UPSTREAMS = ['primary', 'backup', null] as const;
const ERRORS = [null, null, null, null, 'rate_limit_exceeded', 'budget_exceeded', 'invalid_request', 'upstream_500', 'upstream_error'] as const;
/** Of ERRORS, the catalogue's codes refused before the upstream are rate_limit_exceeded, budget_exceeded and invalid_request. */
const REFUSED = new Set<string>(REFUSED_BEFORE_UPSTREAM);

interface Shape {
  ts: number;
  key: number;
  model: number;
  upstream: number;
  error: number;
  status: number;
  tokens: number[];
  cost: number | null;
}

function recordOf(shape: Shape, i: number): UsageRecord {
  const [keyId, keyName] = KEYS[shape.key]!;
  const errorCode = ERRORS[shape.error]!;
  const [prompt, completion, cached, reasoning] = shape.tokens as [number, number, number, number];
  return {
    ts: new Date(shape.ts),
    requestId: `req_${i}`,
    keyId,
    keyName,
    route: '/v1/chat/completions',
    model: MODELS[shape.model]!,
    upstream: UPSTREAMS[shape.upstream]!,
    status: errorCode === null ? shape.status : errorCode === 'upstream_500' ? 500 : 429,
    promptTokens: prompt,
    completionTokens: completion,
    cachedTokens: cached,
    reasoningTokens: reasoning,
    totalTokens: prompt + completion,
    costUsd: shape.cost,
    latencyMs: 100,
    ttfbMs: null,
    aborted: false,
    usageSource: 'upstream',
    errorCode,
  };
}

/** `count` records over `hours` hours from BASE, a fifth of them a millisecond either side of an hour. */
function makeRecords(count: number, hours: number, seed: number): UsageRecord[] {
  const next = random(seed);
  const int = (n: number) => Math.floor(next() * n);
  return Array.from({ length: count }, (_, i) => {
    const edge = next() < 0.2;
    const ts = edge ? BASE + int(hours + 1) * HOUR + int(3) - 1 : BASE + int(hours * HOUR);
    return recordOf(
      { ts, key: int(KEYS.length), model: int(MODELS.length), upstream: int(UPSTREAMS.length), error: int(ERRORS.length), status: next() < 0.05 ? 404 : 200, tokens: [int(4000), int(1000), int(500), int(200)], cost: next() < 0.25 ? null : int(1e6) / 1e7 },
      i,
    );
  });
}

/** The event the pipeline would hand the usage writer for this record. */
function eventOf(r: UsageRecord): UsageEvent {
  return {
    requestId: r.requestId,
    time: r.ts,
    keyId: r.keyId ?? undefined,
    // One of KEYS has no name: the writer stores what it is given.
    caller: r.keyName as string,
    route: r.route,
    model: r.model ?? undefined,
    upstream: r.upstream ?? undefined,
    status: r.status,
    usage: { promptTokens: r.promptTokens, completionTokens: r.completionTokens, cachedTokens: r.cachedTokens, reasoningTokens: r.reasoningTokens, totalTokens: r.totalTokens },
    costUsd: r.costUsd,
    usageSource: 'upstream',
    latencyMs: r.latencyMs,
    ttfbMs: undefined,
    aborted: false,
    errorCode: (r.errorCode ?? undefined) as UsageEvent['errorCode'],
  };
}

interface HourlySums {
  requests: number;
  errors: number;
  /** Refused before the upstream: count, total tokens. */
  refused: number[];
  refusedCost: number;
  tokens: number[];
  cost: number | null;
}

/** Both rollups the records must produce (keyed by level, period and dimensions), computed in JavaScript. */
function expectedRollup(records: readonly UsageRecord[]): Map<string, HourlySums> {
  const rollup = new Map<string, HourlySums>();
  for (const r of records) {
    const ts = r.ts.toISOString();
    for (const [level, start] of [['hour', `${ts.slice(0, 13)}:00:00.000Z`], ['day', `${ts.slice(0, 10)}T00:00:00.000Z`]]) {
      const key = JSON.stringify([level, start, r.keyId, r.keyName, r.model, r.upstream]);
      const sums = rollup.get(key) ?? { requests: 0, errors: 0, refused: [0, 0], refusedCost: 0, tokens: [0, 0, 0, 0, 0], cost: null };
      sums.requests += 1;
      if (r.status >= 400 || r.errorCode !== null) sums.errors += 1;
      if (r.errorCode !== null && REFUSED.has(r.errorCode)) {
        sums.refused[0]! += 1;
        sums.refused[1]! += r.totalTokens;
        sums.refusedCost += r.costUsd ?? 0;
      }
      [r.promptTokens, r.completionTokens, r.cachedTokens, r.reasoningTokens, r.totalTokens].forEach((n, i) => (sums.tokens[i]! += n));
      if (r.costUsd !== null) sums.cost = (sums.cost ?? 0) + r.costUsd;
      rollup.set(key, sums);
    }
  }
  return rollup;
}

async function storedRollup(db: Kysely<Schema>): Promise<Map<string, HourlySums>> {
  const hourly = (await db.selectFrom('usage_hourly').selectAll().execute()).map(({ hour, ...row }) => ({ level: 'hour', start: hour, ...row }));
  const daily = (await db.selectFrom('usage_daily').selectAll().execute()).map(({ day, ...row }) => ({ level: 'day', start: day, ...row }));
  return new Map(
    [...hourly, ...daily].map((row) => [
      JSON.stringify([row.level, row.start, row.key_id, row.key_name, row.model, row.upstream]),
      {
        requests: Number(row.requests),
        errors: Number(row.errors),
        refused: [Number(row.refused), Number(row.refused_tokens)],
        refusedCost: Number(row.refused_cost_usd),
        tokens: [row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.reasoning_tokens, row.total_tokens].map(Number),
        cost: row.cost_usd === null ? null : Number(row.cost_usd),
      },
    ]),
  );
}

/** Float sums in another order differ in the last bits; everything else must be equal. */
function closeTo(actual: number | null, expected: number | null): boolean {
  if (actual === null || expected === null) return actual === expected;
  return Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected));
}

function assertRollup(actual: Map<string, HourlySums>, expected: Map<string, HourlySums>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [key, want] of expected) {
    const got = actual.get(key)!;
    assert.deepEqual({ ...got, cost: got.cost === null, refusedCost: 0 }, { ...want, cost: want.cost === null, refusedCost: 0 }, key);
    assert.ok(closeTo(got.cost, want.cost), `${key}: cost ${got.cost} vs ${want.cost}`);
    assert.ok(closeTo(got.refusedCost, want.refusedCost), `${key}: refused cost ${got.refusedCost} vs ${want.refusedCost}`);
  }
}

/** The budget baseline as it was computed before the rollup: raw rows only. */
async function rawTotals(db: Kysely<Schema>, keyId: string, since: Date | undefined, refused: readonly string[]): Promise<UsageTotals> {
  let query = db
    .selectFrom('usage_records')
    .select((eb) => [eb.fn.countAll().as('requests'), eb.fn.coalesce(eb.fn.sum('total_tokens'), sql<number>`0`).as('tokens'), eb.fn.coalesce(eb.fn.sum('cost_usd'), sql<number>`0`).as('cost_usd')])
    .where('key_id', '=', keyId);
  if (since !== undefined) query = query.where('ts', '>=', since.toISOString());
  if (refused.length > 0) query = query.where((eb) => eb.or([eb('error_code', 'is', null), eb('error_code', 'not in', [...refused])]));
  const row = await query.executeTakeFirstOrThrow();
  return { requests: Number(row.requests), tokens: Number(row.tokens), costUsd: Number(row.cost_usd) };
}

const RAW_GROUPS: Record<UsageGroupBy, string> = { model: `coalesce(model, '(none)')`, key: `coalesce(key_name, '(none)')`, upstream: `coalesce(upstream, '(none)')`, day: 'substr(ts, 1, 10)', hour: 'substr(ts, 1, 13)' };

/** A report as it was computed before the rollup: raw rows only. */
async function rawReport(db: Kysely<Schema>, filter: UsageReportFilter): Promise<UsageReportRow[]> {
  const group = sql.raw(RAW_GROUPS[filter.by]);
  const where = [sql`1 = 1`];
  if (filter.keyName !== undefined) where.push(sql`key_name = ${filter.keyName}`);
  if (filter.upstream !== undefined) where.push(sql`upstream = ${filter.upstream}`);
  if (filter.since !== undefined) where.push(sql`ts >= ${filter.since.toISOString()}`);
  if (filter.until !== undefined) where.push(sql`ts < ${filter.until.toISOString()}`);
  const { rows } = await sql<Record<string, string | number | null>>`
    select ${group} as bucket, count(*) as requests, sum(prompt_tokens) as p, sum(completion_tokens) as c, sum(cached_tokens) as ca,
      sum(reasoning_tokens) as r, sum(total_tokens) as t, sum(cost_usd) as cost,
      sum(case when status >= 400 or error_code is not null then 1 else 0 end) as errors
    from usage_records where ${sql.join(where, sql` and `)} group by ${group}`.execute(db);
  return rows
    .map((row) => ({
      group: String(row['bucket']),
      requests: Number(row['requests']),
      promptTokens: Number(row['p']),
      completionTokens: Number(row['c']),
      cachedTokens: Number(row['ca']),
      reasoningTokens: Number(row['r']),
      totalTokens: Number(row['t']),
      costUsd: row['cost'] === null ? null : Number(row['cost']),
      errors: Number(row['errors']),
    }))
    .sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
}

function assertSameReport(actual: UsageReportRow[], expected: UsageReportRow[], label: string): void {
  assert.deepEqual(actual.map((row) => ({ ...row, costUsd: row.costUsd === null })), expected.map((row) => ({ ...row, costUsd: row.costUsd === null })), label);
  actual.forEach((row, i) => assert.ok(closeTo(row.costUsd, expected[i]!.costUsd), `${label} ${row.group}: cost ${row.costUsd} vs ${expected[i]!.costUsd}`));
}

async function clear(db: Kysely<Schema>): Promise<void> {
  await db.deleteFrom('usage_records').execute();
  await db.deleteFrom('usage_hourly').execute();
  await db.deleteFrom('usage_daily').execute();
}

test('splitRange reads whole days and hours from the rollups and the partial hours from raw rows', () => {
  const at = (text: string) => new Date(`2031-05-${text}Z`);
  const part = (source: string, from: string | undefined, to: string | undefined) => ({ source, from: from && `2031-05-${from}Z`, to: to && `2031-05-${to}Z` });
  const parts = (since: Date | undefined, until: Date | undefined, now: Date) =>
    splitRange(since, until, now).map((p) => ({ source: p.source === 'raw' ? 'raw' : p.source.column, from: p.from, to: p.to }));
  const now = at('20T12:30:00.000');
  assert.deepEqual(parts(at('10T09:15:00.000'), at('13T11:20:00.000'), now), [
    part('day', '11T00:00:00.000', '13T00:00:00.000'),
    part('hour', '10T10:00:00.000', '11T00:00:00.000'),
    part('raw', '10T09:15:00.000', '10T10:00:00.000'),
    part('hour', '13T00:00:00.000', '13T11:00:00.000'),
    part('raw', '13T11:00:00.000', '13T11:20:00.000'),
  ]);
  // A month's budget: whole days, today's whole hours, then the hour under way and anything stamped later.
  assert.deepEqual(parts(at('01T00:00:00.000'), undefined, now), [
    part('day', '01T00:00:00.000', '20T00:00:00.000'),
    part('hour', '20T00:00:00.000', '20T12:00:00.000'),
    part('raw', '20T12:00:00.000', undefined),
  ]);
  assert.deepEqual(parts(undefined, at('20T00:00:00.000'), now), [part('day', undefined, '20T00:00:00.000')]);
  // Within one hour: raw rows only; within one day: hours and raw rows.
  assert.deepEqual(parts(at('10T09:15:00.000'), at('10T09:45:00.000'), now), [part('raw', '10T09:15:00.000', '10T09:45:00.000')]);
  assert.deepEqual(parts(at('10T09:00:00.000'), at('10T11:45:00.000'), now), [part('hour', '10T09:00:00.000', '10T11:00:00.000'), part('raw', '10T11:00:00.000', '10T11:45:00.000')]);
});

for (const backend of storageBackends()) {
  describe(`hourly usage rollup on ${backend.name}`, () => {
    let database: TestDatabase;
    let usage: UsageRepository;
    before(async () => {
      database = await backend.open();
      usage = new UsageRepository(database);
    });
    after(async () => {
      await database.cleanup();
    });

    test('after 150 flushes of the usage writer across 30 hours, the rollups equal the raw rows summed per hour and per day', async () => {
      await clear(database.db);
      const writer = new UsageWriter(usage, new KeysRepository(database), new StorageHealth(), { flushIntervalMs: 3_600_000, logger: createLogger('silent'), ping: () => database.ping() });
      const records = makeRecords(6000, 30, 7).sort((a, b) => a.ts.getTime() - b.ts.getTime());
      for (let i = 0; i < records.length; i += 40) {
        for (const r of records.slice(i, i + 40)) {
          writer.record(eventOf(r));
        }
        await writer.flush();
      }
      await writer.close();
      const stored = await database.db.selectFrom('usage_records').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
      assert.equal(Number(stored.n), records.length);
      const expected = expectedRollup(records);
      assert.ok(expected.size > 500, `${expected.size} buckets`);
      assertRollup(await storedRollup(database.db), expected);
    });

    test('a batch that fails part-way adds nothing to the rollups either', async () => {
      await clear(database.db);
      await usage.insertBatch(makeRecords(50, 3, 1));
      const before = await storedRollup(database.db);
      const batch = makeRecords(300, 3, 2);
      batch[250] = { ...batch[250]!, route: null as unknown as string }; // NOT NULL column
      await assert.rejects(usage.insertBatch(batch));
      assertRollup(await storedRollup(database.db), before);
    });

    test('concurrent flushes of overlapping buckets add up (no lost update, no deadlock)', async () => {
      await clear(database.db);
      const records = makeRecords(4000, 4, 3);
      const next = random(9);
      const batches = Array.from({ length: 8 }, (_, b) => records.filter((_, i) => i % 8 === b).sort(() => next() - 0.5));
      // Separate repositories: on PostgreSQL each flush takes its own pooled connection.
      await Promise.all(batches.map((batch) => new UsageRepository(database).insertBatch(batch)));
      assertRollup(await storedRollup(database.db), expectedRollup(records));
    });

    test('budget baselines and reports from rollups + raw rows equal the raw-row computation (random data, any clock)', async () => {
      const shape = fc.record({
        ts: fc.oneof(fc.integer({ min: -DAY, max: 2 * DAY }), fc.tuple(fc.integer({ min: -24, max: 48 }), fc.integer({ min: -1, max: 1 })).map(([h, d]) => h * HOUR + d)).map((offset) => BASE + offset),
        key: fc.nat(KEYS.length - 1),
        model: fc.nat(MODELS.length - 1),
        upstream: fc.nat(UPSTREAMS.length - 1),
        error: fc.nat(ERRORS.length - 1),
        status: fc.constantFrom(200, 200, 200, 404),
        tokens: fc.array(fc.nat(5000), { minLength: 4, maxLength: 4 }),
        cost: fc.option(fc.double({ min: 0, max: 2, noNaN: true }), { nil: null }),
      });
      // Boundaries on, just before and just after an hour (days included), or anywhere, over three days and around them.
      const moment = fc.oneof(fc.integer({ min: -2 * DAY, max: 3 * DAY }), fc.tuple(fc.integer({ min: -48, max: 72 }), fc.constantFrom(-1, 0, 1)).map(([h, d]) => h * HOUR + d)).map((offset) => new Date(BASE + offset));
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(shape, { maxLength: 40 }), { minLength: 1, maxLength: 6 }),
          fc.option(moment, { nil: undefined }),
          fc.option(moment, { nil: undefined }),
          moment,
          async (batches, since, until, now) => {
            await clear(database.db);
            let n = 0;
            for (const batch of batches) await usage.insertBatch(batch.map((s) => recordOf(s, n++)));
            for (const keyId of ['key_a', 'key_b', 'key_c']) {
              for (const excludeRefused of [true, false]) {
                const want = await rawTotals(database.db, keyId, since, excludeRefused ? REFUSED_BEFORE_UPSTREAM : []);
                const got = await usage.totalsSince(keyId, since, { excludeRefused, now });
                assert.deepEqual({ ...got, costUsd: 0 }, { ...want, costUsd: 0 }, `${keyId} since ${since?.toISOString()} now ${now.toISOString()}`);
                assert.ok(closeTo(got.costUsd, want.costUsd), `${keyId}: cost ${got.costUsd} vs ${want.costUsd}`);
              }
            }
            for (const by of ['key', 'model', 'day', 'hour', 'upstream'] as const) {
              for (const keyName of [undefined, 'alice', '']) {
                const filter: UsageReportFilter = { by, since, until, ...(keyName === undefined ? {} : { keyName }) };
                assertSameReport(await usage.report(filter, now), await rawReport(database.db, filter), `by ${by} key ${keyName}`);
              }
              for (const upstream of ['primary', 'backup']) {
                const filter: UsageReportFilter = { by, since, until, upstream };
                assertSameReport(await usage.report(filter, now), await rawReport(database.db, filter), `by ${by} upstream ${upstream}`);
              }
            }
          },
        ),
        { numRuns: 80, seed: 1414 },
      );
    });

    test('deleteRawBefore deletes at most one batch of the rows before the cutoff, and never rollup rows', async () => {
      await clear(database.db);
      const records = makeRecords(400, 10, 5);
      await usage.insertBatch(records);
      const rollup = await storedRollup(database.db);
      const cutoff = new Date(BASE + 6 * HOUR);
      const older = records.filter((r) => r.ts < cutoff).length;
      const rawCount = async (where: 'before' | 'from') =>
        Number((await database.db.selectFrom('usage_records').select((eb) => eb.fn.countAll().as('n')).where('ts', where === 'before' ? '<' : '>=', cutoff.toISOString()).executeTakeFirstOrThrow()).n);
      assert.equal(await usage.deleteRawBefore(cutoff, 17), 17);
      assert.equal(await rawCount('before'), older - 17);
      let deleted = 17;
      for (let step = await usage.deleteRawBefore(cutoff, 100); step > 0; step = await usage.deleteRawBefore(cutoff, 100)) {
        assert.ok(step <= 100);
        deleted += step;
      }
      assert.equal(deleted, older);
      assert.equal(await rawCount('before'), 0);
      assert.equal(await rawCount('from'), records.length - older);
      assertRollup(await storedRollup(database.db), rollup);
      // Reports still count the deleted hours, from the rollup.
      const all = await usage.report({ by: 'key', until: new Date(BASE + 11 * HOUR) }, new Date(BASE + 11 * HOUR));
      assert.equal(all.reduce((sum, row) => sum + row.requests, 0), records.length);
    });
  });

  describe(`migration 0004 on an existing ${backend.name} database`, () => {
    let database: TestDatabase | undefined;
    after(async () => {
      await database?.cleanup();
    });

    test('backfills both rollups from the raw rows already stored, once, and later flushes add to them', async () => {
      database = await backend.open();
      // Back to the schema before 0004 (later migrations undone too), holding 3,000 raw rows written by an older gateway.
      const schema = database.kind === 'postgres' ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(database.db)).rows[0]!.schema : undefined;
      const migrator = new Migrator({ db: database.db, provider: { getMigrations: () => Promise.resolve({ ...migrations }) }, ...(schema === undefined ? {} : { migrationTableSchema: schema }) });
      const { error } = await migrator.migrateTo('0003_background_usage');
      assert.equal(error, undefined);
      const old = makeRecords(3000, 48, 11);
      for (let i = 0; i < old.length; i += 500) {
        await database.db
          .insertInto('usage_records')
          .values(old.slice(i, i + 500).map((r) => ({
            ts: r.ts.toISOString(), request_id: r.requestId, key_id: r.keyId, key_name: r.keyName, route: r.route, model: r.model, upstream: r.upstream, status: r.status,
            prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, cached_tokens: r.cachedTokens, reasoning_tokens: r.reasoningTokens, total_tokens: r.totalTokens,
            cost_usd: r.costUsd, latency_ms: r.latencyMs, ttfb_ms: r.ttfbMs, aborted: 0, usage_source: r.usageSource, error_code: r.errorCode,
          })))
          .execute();
      }
      await database.close();

      const reopened = await openDatabase(database.url);
      try {
        assertRollup(await storedRollup(reopened.db), expectedRollup(old));
        // Run again (a restart after a crash before the migration was recorded): nothing doubles.
        await backfillUsageRollup(reopened.db as unknown as Kysely<unknown>);
        assertRollup(await storedRollup(reopened.db), expectedRollup(old));
        // New flushes upsert onto the backfilled rows (the index matches the writer's conflict target).
        const more = makeRecords(1000, 48, 12).map((r, i) => ({ ...r, requestId: `more_${i}` }));
        await new UsageRepository(reopened).insertBatch(more);
        assertRollup(await storedRollup(reopened.db), expectedRollup([...old, ...more]));
        const since = new Date(BASE + 5 * HOUR + 1234);
        const now = new Date(BASE + 30 * HOUR + 1);
        assert.deepEqual(
          await new UsageRepository(reopened).totalsSince('key_a', since, { excludeRefused: true, now }).then((t) => ({ ...t, costUsd: 0 })),
          await rawTotals(reopened.db, 'key_a', since, REFUSED_BEFORE_UPSTREAM).then((t) => ({ ...t, costUsd: 0 })),
        );
      } finally {
        await reopened.close();
      }
    });
  });
}
