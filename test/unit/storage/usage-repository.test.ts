import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { UsageRepository } from '../../../src/storage/usage-repository.js';
import type { UsageRecord, UsageReportFilter, UsageReportRow } from '../../../src/storage/usage-repository.js';
import { StorageError } from '../../../src/storage/storage-error.js';
import { storageBackends } from '../../helpers/databases.js';
import type { TestDatabase } from '../../helpers/databases.js';
import { seededRandom as random } from '../../helpers/seeded-random.js';

const DAY = 86_400_000;
const START = Date.parse('2030-03-01T00:00:00.000Z');
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'o3-mini', 'local-llama', null] as const;
const KEYS = ['alice', 'bob', 'carol', 'dave', null] as const;

/**
 * 2,500 records over ten UTC days, some a millisecond either side of midnight. local-llama never
 * has a price and dave only uses it, so both groups must report a null cost; other records miss
 * their price one time in five.
 */
function makeRecords(count: number): UsageRecord[] {
  const next = random(42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const records: UsageRecord[] = [];
  for (let i = 0; i < count; i += 1) {
    const keyName = pick(KEYS);
    const model = keyName === 'dave' ? 'local-llama' : pick(MODELS);
    const edge = i % 50 === 0 ? DAY * (1 + (i % 9)) - (i % 100 === 0 ? 1 : 0) : undefined;
    const ts = new Date(START + (edge ?? Math.floor(next() * 10 * DAY)));
    const promptTokens = Math.floor(next() * 4000);
    const completionTokens = Math.floor(next() * 1000);
    const priced = model !== 'local-llama' && next() >= 0.2;
    const status = next() < 0.1 ? pick([400, 429, 500, 502]) : 200;
    records.push({
      ts,
      requestId: `req_${i}`,
      keyId: keyName === null ? null : `key_${keyName}`,
      keyName,
      route: pick(['/v1/chat/completions', '/api/chat', '/v1/embeddings']),
      model,
      upstream: pick(['primary', 'backup', null]),
      status,
      promptTokens,
      completionTokens,
      cachedTokens: Math.floor(promptTokens * next() * 0.5),
      reasoningTokens: model === 'o3-mini' ? Math.floor(completionTokens / 2) : 0,
      totalTokens: promptTokens + completionTokens,
      costUsd: priced ? Math.round(next() * 1e6) / 1e8 : null,
      latencyMs: next() * 3000,
      ttfbMs: next() < 0.5 ? next() * 500 : null,
      aborted: next() < 0.05,
      usageSource: pick(['upstream', 'estimated', 'none'] as const),
      errorCode: status === 200 && next() < 0.03 ? 'upstream_stream_error' : status === 200 ? null : 'upstream_error',
    });
  }
  return records;
}

/** The row insertBatch must store for a well-formed record (what a reader gets back). */
function columnsOf(record: UsageRecord): Record<string, unknown> {
  return {
    ts: record.ts.toISOString(),
    request_id: record.requestId,
    key_id: record.keyId,
    key_name: record.keyName,
    route: record.route,
    model: record.model,
    upstream: record.upstream,
    status: record.status,
    prompt_tokens: record.promptTokens,
    completion_tokens: record.completionTokens,
    cached_tokens: record.cachedTokens,
    reasoning_tokens: record.reasoningTokens,
    total_tokens: record.totalTokens,
    cost_usd: record.costUsd,
    latency_ms: record.latencyMs,
    ttfb_ms: record.ttfbMs,
    aborted: record.aborted ? 1 : 0,
    usage_source: record.usageSource,
    error_code: record.errorCode,
    conversation_id: record.conversationId ?? null,
  };
}

function groupOf(record: UsageRecord, by: UsageReportFilter['by']): string {
  if (by === 'day') return record.ts.toISOString().slice(0, 10);
  return (by === 'model' ? record.model : record.keyName) ?? '(none)';
}

/** What report() must return, computed in JavaScript from the inserted data. */
function expectedReport(records: UsageRecord[], filter: UsageReportFilter): UsageReportRow[] {
  const groups = new Map<string, UsageReportRow>();
  for (const record of records) {
    if (filter.keyName !== undefined && record.keyName !== filter.keyName) continue;
    if (filter.since !== undefined && record.ts < filter.since) continue;
    if (filter.until !== undefined && record.ts >= filter.until) continue;
    const group = groupOf(record, filter.by);
    const row = groups.get(group) ?? {
      group, requests: 0, promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0, totalTokens: 0, costUsd: null, errors: 0,
    };
    row.requests += 1;
    row.promptTokens += record.promptTokens;
    row.completionTokens += record.completionTokens;
    row.cachedTokens += record.cachedTokens;
    row.reasoningTokens += record.reasoningTokens;
    row.totalTokens += record.totalTokens;
    if (record.costUsd !== null) row.costUsd = (row.costUsd ?? 0) + record.costUsd;
    if (record.status >= 400 || record.errorCode !== null) row.errors += 1;
    groups.set(group, row);
  }
  return [...groups.values()].sort((a, b) => (a.group < b.group ? -1 : 1));
}

/** Exact for counts; costs are float sums whose order differs between engines. */
function assertReport(actual: UsageReportRow[], expected: UsageReportRow[]): void {
  const sorted = [...actual].sort((a, b) => (a.group < b.group ? -1 : 1));
  assert.deepEqual(sorted.map((row) => row.group), expected.map((row) => row.group));
  sorted.forEach((row, i) => {
    const want = expected[i] as UsageReportRow;
    assert.deepEqual({ ...row, costUsd: row.costUsd === null }, { ...want, costUsd: want.costUsd === null }, row.group);
    if (want.costUsd !== null) assert.ok(Math.abs((row.costUsd ?? NaN) - want.costUsd) < 1e-9, `${row.group} cost`);
  });
}

for (const backend of storageBackends()) {
  describe(backend.name, () => {
    const records = makeRecords(2500);
    let database: TestDatabase;
    let usage: UsageRepository;
    before(async () => {
      database = await backend.open();
      usage = new UsageRepository(database);
      await usage.insertBatch(records);
    });
    after(async () => {
      await database.cleanup();
    });

    test('insertBatch stores all 2,500 records despite the bound-parameter limit', async () => {
      const row = await database.db
        .selectFrom('usage_records')
        .select((eb) => [eb.fn.countAll().as('n'), eb.fn.count('request_id').distinct().as('ids')])
        .executeTakeFirstOrThrow();
      assert.equal(Number(row.n), 2500);
      assert.equal(Number(row.ids), 2500);
    });

    test('the generated data covers every case the report must handle', () => {
      const byModel = expectedReport(records, { by: 'model' });
      assert.equal(byModel.find((row) => row.group === 'local-llama')?.costUsd, null);
      assert.ok(records.some((r) => r.model === 'gpt-4o' && r.costUsd === null), 'mixed null and known costs');
      assert.equal(expectedReport(records, { by: 'day' }).length, 10);
      assert.ok(byModel.every((row) => row.errors > 0));
    });

    test('report by model sums every column exactly', async () => {
      assertReport(await usage.report({ by: 'model' }), expectedReport(records, { by: 'model' }));
    });

    test('report by day groups on the UTC date, midnight edges included', async () => {
      const rows = await usage.report({ by: 'day' });
      assert.ok(rows.every((row) => /^\d{4}-\d{2}-\d{2}$/.test(row.group)));
      assert.deepEqual(rows.map((row) => row.group), [...rows.map((row) => row.group)].sort(), 'days come in order');
      assertReport(rows, expectedReport(records, { by: 'day' }));
    });

    test('report by key with since, and by model for one key within [since, until)', async () => {
      const since = new Date(START + 3 * DAY + 12_345);
      assertReport(await usage.report({ by: 'key', since }), expectedReport(records, { by: 'key', since }));
      const until = new Date(START + 7 * DAY);
      const filter: UsageReportFilter = { by: 'model', keyName: 'bob', since, until };
      assertReport(await usage.report(filter), expectedReport(records, filter));
      assert.deepEqual(await usage.report({ by: 'model', keyName: 'nobody' }), []);
    });

    test('costUsd is null only when every record in the group lacks a cost', async () => {
      const byKey = await usage.report({ by: 'key' });
      assert.equal(byKey.find((row) => row.group === 'dave')?.costUsd, null);
      for (const name of ['alice', 'bob', 'carol', '(none)']) {
        assert.equal(typeof byKey.find((row) => row.group === name)?.costUsd, 'number', name);
      }
    });

    test('totalsSince sums one key since a date, ignoring unknown costs', async () => {
      const since = new Date(START + 5 * DAY);
      for (const name of ['alice', 'dave']) {
        for (const from of [since, undefined]) {
          const mine = records.filter((r) => r.keyId === `key_${name}` && (from === undefined || r.ts >= from));
          const totals = await usage.totalsSince(`key_${name}`, from);
          assert.equal(totals.requests, mine.length);
          assert.equal(totals.tokens, mine.reduce((sum, r) => sum + r.totalTokens, 0));
          const cost = mine.reduce((sum, r) => sum + (r.costUsd ?? 0), 0);
          assert.ok(Math.abs(totals.costUsd - cost) < 1e-9, `${name}: ${totals.costUsd} vs ${cost}`);
        }
      }
      assert.deepEqual(await usage.totalsSince('key_dave', undefined).then((t) => t.costUsd), 0);
      assert.deepEqual(await usage.totalsSince('key_nobody', undefined), { requests: 0, tokens: 0, costUsd: 0 });
    });
  });

  describe(`${backend.name} insertBatch edge cases`, () => {
    let database: TestDatabase;
    let usage: UsageRepository;
    before(async () => {
      database = await backend.open();
      usage = new UsageRepository(database);
    });
    after(async () => {
      await database.cleanup();
    });

    const countRows = async () =>
      Number((await database.db.selectFrom('usage_records').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

    test('a batch that fails part-way stores nothing', async () => {
      const batch = makeRecords(300);
      batch[250] = { ...(batch[250] as UsageRecord), route: null as unknown as string }; // NOT NULL column
      await assert.rejects(usage.insertBatch(batch), (error: unknown) => error instanceof StorageError && error.code === 'unavailable');
      assert.equal(await countRows(), 0);
    });

    test('one flush of 1,000 records reads back exactly, column for column and in order', async () => {
      // Text that array literals and quoting must survive (PostgreSQL gets one array per column).
      const awkward = ['', 'NULL', 'null', 'a,b', '{x}', 'say "hi"', 'back\\slash', "it's", 'tab\tnew\nline', 'ünïcødé ✓', ' padded '];
      const batch = makeRecords(1000).map((record, i) => ({
        ...record,
        requestId: `flush1000_${i}`,
        keyName: i % 7 === 0 ? (awkward[i % awkward.length] as string) : record.keyName,
        model: i % 5 === 0 ? (awkward[(i + 3) % awkward.length] as string) : record.model,
        errorCode: i % 11 === 0 ? (awkward[(i + 5) % awkward.length] as string) : record.errorCode,
        costUsd: i % 13 === 0 ? 1 / 3 : record.costUsd,
        conversationId: i % 3 === 0 ? (awkward[(i + 7) % awkward.length] as string) : i % 3 === 1 ? `wxid_${i}` : undefined,
      }));
      await usage.insertBatch(batch);
      const rows = await database.db.selectFrom('usage_records').selectAll().where('request_id', 'like', 'flush1000_%').orderBy('id').execute();
      assert.equal(rows.length, 1000);
      const { id: _id, ...first } = rows[0]!;
      assert.deepEqual(Object.keys(first).sort(), Object.keys(columnsOf(batch[0]!)).sort(), 'every column is compared');
      rows.forEach((row, i) => {
        const { id: _rowId, ...columns } = row;
        assert.deepEqual(columns, columnsOf(batch[i]!), `record ${i}`);
      });
    });

    test('a batch written while another transaction is open is not rolled back with it', async () => {
      let entered!: () => void;
      let release!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const gate = new Promise<void>((resolve) => (release = resolve));
      const other = database.db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        entered();
        await gate;
        throw new Error('rolled back on purpose');
      });
      await inside;
      const writing = usage.insertBatch(makeRecords(3).map((record, i) => ({ ...record, requestId: `beside_tx_${i}` })));
      release();
      await assert.rejects(other, /rolled back on purpose/);
      await writing;
      const row = await database.db.selectFrom('usage_records').select((eb) => eb.fn.countAll().as('n')).where('request_id', 'like', 'beside_tx_%').executeTakeFirstOrThrow();
      assert.equal(Number(row.n), 3);
    });

    test('an empty batch is a no-op and malformed numbers do not sink the batch', async () => {
      await usage.insertBatch([]);
      const [record] = makeRecords(1);
      await usage.insertBatch([
        { ...(record as UsageRecord), keyId: 'key_odd', promptTokens: 10.6, completionTokens: Number.NaN, latencyMs: Number.POSITIVE_INFINITY, costUsd: Number.NaN },
      ]);
      const row = await database.db.selectFrom('usage_records').selectAll().where('key_id', '=', 'key_odd').executeTakeFirstOrThrow();
      assert.deepEqual([row.prompt_tokens, row.completion_tokens, row.latency_ms, row.cost_usd], [11, 0, 0, null]);
    });
  });
}
