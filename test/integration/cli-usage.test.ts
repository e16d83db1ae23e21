import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UsageRepository, type UsageRecord } from '../../src/storage/usage-repository.js';
import { storageBackends, type TestDatabase } from '../helpers/databases.js';
import { runCli, tempConfigDir, type CliResult } from '../helpers/gateway.js';

// Run against the built command: `npm run build` first.

const HOUR = 3_600_000;
const KEYS = ['alice', 'bob', null] as const;
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'local-llama'] as const;
/** Hours before now; none near the 24h / 7d boundaries the tests filter on, so the CLI's own clock cannot tip a record. */
const AGES = [1, 3, 10, 20, 30, 50, 70, 100, 140, 200, 260, 330, 500];

interface JsonRow {
  group: string;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  cost_usd: number | null;
}

/** 117 records: every key × model × age, local-llama never priced, every seventh one failed. */
function makeRecords(now: number): UsageRecord[] {
  const records: UsageRecord[] = [];
  let i = 0;
  for (const keyName of KEYS) {
    for (const model of MODELS) {
      for (const age of AGES) {
        i += 1;
        const promptTokens = 100 + ((i * 37) % 900);
        const completionTokens = 10 + ((i * 53) % 400);
        const status = i % 7 === 0 ? 502 : 200;
        records.push({
          ts: new Date(now - age * HOUR - i * 1000),
          requestId: `req_${i}`,
          keyId: keyName === null ? null : `key_${keyName}`,
          keyName,
          route: '/v1/chat/completions',
          model,
          upstream: 'primary',
          status,
          promptTokens,
          completionTokens,
          cachedTokens: i % 3 === 0 ? Math.floor(promptTokens / 2) : 0,
          reasoningTokens: model === 'gpt-4o' ? Math.floor(completionTokens / 4) : 0,
          totalTokens: promptTokens + completionTokens,
          costUsd: model === 'local-llama' ? null : (promptTokens * 2.5 + completionTokens * 10) / 1e6,
          latencyMs: 120,
          ttfbMs: 40,
          aborted: false,
          usageSource: 'upstream',
          errorCode: status === 200 ? null : 'upstream_error',
        });
      }
    }
  }
  return records;
}

type By = 'key' | 'model' | 'day';

/** What the report must say, computed from the inserted records. */
function expected(records: UsageRecord[], by: By, filter: { key?: string; since?: number; until?: number } = {}): JsonRow[] {
  const groups = new Map<string, JsonRow>();
  for (const record of records) {
    if (filter.key !== undefined && record.keyName !== filter.key) continue;
    if (filter.since !== undefined && record.ts.getTime() < filter.since) continue;
    if (filter.until !== undefined && record.ts.getTime() >= filter.until) continue;
    const group = by === 'day' ? record.ts.toISOString().slice(0, 10) : ((by === 'key' ? record.keyName : record.model) ?? '(none)');
    const row = groups.get(group) ?? { group, requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 0, cost_usd: null };
    row.requests += 1;
    row.errors += record.status >= 400 || record.errorCode !== null ? 1 : 0;
    row.prompt_tokens += record.promptTokens;
    row.completion_tokens += record.completionTokens;
    row.cached_tokens += record.cachedTokens;
    row.reasoning_tokens += record.reasoningTokens;
    row.total_tokens += record.totalTokens;
    if (record.costUsd !== null) row.cost_usd = (row.cost_usd ?? 0) + record.costUsd;
    groups.set(group, row);
  }
  return [...groups.values()].sort((a, b) => (a.group < b.group ? -1 : 1));
}

/** Counts exactly; costs are float sums whose order differs between engines. */
function assertRows(actual: JsonRow[], want: JsonRow[]): void {
  const withoutCost = (rows: JsonRow[]) => rows.map((row) => ({ ...row, cost_usd: row.cost_usd === null ? null : 'known' }));
  assert.deepEqual(withoutCost(actual), withoutCost(want));
  actual.forEach((row, i) => {
    if (row.cost_usd !== null) assert.ok(Math.abs(row.cost_usd - want[i]!.cost_usd!) < 1e-9, `${row.group} cost`);
  });
}

/** The table's cells, by splitting on the two-space gaps; numbers lose their thousands separators. */
function tableLine(stdout: string, first: string): string[] {
  const line = stdout.split('\n').find((text) => text.startsWith(`${first} `));
  assert.ok(line !== undefined, `no "${first}" row in:\n${stdout}`);
  return line.split(/ {2,}/).map((cell) => cell.replace(/,/g, ''));
}

function cellsOf(row: JsonRow, label = row.group): string[] {
  return [
    label,
    ...[row.requests, row.errors, row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.reasoning_tokens, row.total_tokens].map(String),
    row.cost_usd === null ? '—' : row.cost_usd.toFixed(4),
  ];
}

function totalOf(rows: JsonRow[]): JsonRow {
  const sum = (pick: (row: JsonRow) => number) => rows.reduce((total, row) => total + pick(row), 0);
  const costs = rows.filter((row) => row.cost_usd !== null);
  return {
    group: 'TOTAL',
    requests: sum((row) => row.requests),
    errors: sum((row) => row.errors),
    prompt_tokens: sum((row) => row.prompt_tokens),
    completion_tokens: sum((row) => row.completion_tokens),
    cached_tokens: sum((row) => row.cached_tokens),
    reasoning_tokens: sum((row) => row.reasoning_tokens),
    total_tokens: sum((row) => row.total_tokens),
    cost_usd: costs.length === 0 ? null : sum((row) => row.cost_usd ?? 0),
  };
}

for (const backend of storageBackends()) {
  describe(`openai-api usage on ${backend.name}`, () => {
    const now = Date.now();
    const records = makeRecords(now);
    const cwd = tempConfigDir();
    let database: TestDatabase;
    const cli = (...args: string[]): Promise<CliResult> => runCli(['usage', ...args], { env: { DATABASE_URL: database.url }, cwd });
    const json = async (...args: string[]): Promise<JsonRow[]> => {
      const result = await cli(...args, '--json');
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout) as JsonRow[];
    };
    before(async () => {
      database = await backend.open();
      await new UsageRepository(database).insertBatch(records);
    });
    after(() => database.cleanup());

    test('the default table has one aligned row per key with cost, and a TOTAL row of all records', async () => {
      const result = await cli();
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^Usage by key \(all time\)$/m);
      assert.match(result.stdout, /^KEY\s+REQUESTS\s+ERRORS\s+PROMPT\s+COMPLETION\s+CACHED\s+REASONING\s+TOTAL TOKENS\s+COST \(USD\)$/m);
      const rows = expected(records, 'key');
      assert.deepEqual(rows.map((row) => row.group), ['(none)', 'alice', 'bob']);
      for (const row of rows) assert.deepEqual(tableLine(result.stdout, row.group), cellsOf(row));
      assert.deepEqual(tableLine(result.stdout, 'TOTAL'), cellsOf(totalOf(rows)));
      assert.equal(totalOf(rows).requests, records.length);
      // Right-aligned numbers: every line of the table ends in the same column.
      const tableLines = result.stdout.split('\n').slice(2).filter((line) => line.length > 0);
      assert.equal(new Set(tableLines.map((line) => line.length)).size, 1, result.stdout);
    });

    test('--json gives the same rows as a JSON array', async () => {
      assertRows(await json(), expected(records, 'key'));
    });

    test('--by model shows "—" for a model without a price, and --by day groups on the UTC date', async () => {
      const byModel = expected(records, 'model');
      assertRows(await json('--by', 'model'), byModel);
      const table = await cli('--by', 'model');
      assert.equal(tableLine(table.stdout, 'local-llama').at(-1), '—');
      assert.deepEqual(tableLine(table.stdout, 'TOTAL'), cellsOf(totalOf(byModel)));
      const byDay = await json('--by', 'day');
      assert.ok(byDay.every((row) => /^\d{4}-\d{2}-\d{2}$/.test(row.group)));
      assertRows(byDay, expected(records, 'day'));
    });

    test('--key keeps one key, also for a key that no longer exists but has records', async () => {
      assertRows(await json('--key', 'alice', '--by', 'model'), expected(records, 'model', { key: 'alice' }));
      const table = await cli('--key', 'bob');
      assert.match(table.stdout, /^Usage by key for key "bob" \(all time\)$/m);
      assert.deepEqual(tableLine(table.stdout, 'TOTAL'), cellsOf(totalOf(expected(records, 'key', { key: 'bob' }))));
    });

    test('--since takes relative times (24h, 7d) and ISO dates, --until ends the window', async () => {
      assertRows(await json('--since', '24h'), expected(records, 'key', { since: now - 24 * HOUR }));
      const week = expected(records, 'model', { since: now - 7 * 24 * HOUR });
      assertRows(await json('--since', '7d', '--by', 'model'), week);
      assert.ok(week[0]!.requests < expected(records, 'model')[0]!.requests, 'the filter drops something');
      const since = new Date(now - 120 * HOUR).toISOString();
      const until = new Date(now - 15 * HOUR).toISOString();
      assertRows(
        await json('--since', since, '--until', until, '--key', 'alice', '--by', 'day'),
        expected(records, 'day', { key: 'alice', since: Date.parse(since), until: Date.parse(until) }),
      );
    });

    test('an unknown key with no records exits 1; a window with no records says so', async () => {
      const ghost = await cli('--key', 'ghost');
      assert.equal(ghost.code, 1);
      assert.match(ghost.stderr, /^openai-api usage: no key named "ghost", and no usage recorded under that name\n$/);
      const future = await cli('--since', new Date(now + 1000 * HOUR).toISOString());
      assert.equal(future.code, 0, future.stderr);
      assert.match(future.stdout, /no usage recorded/);
      assert.deepEqual(await json('--since', new Date(now + 1000 * HOUR).toISOString()), []);
    });

    test('bad values and unknown flags exit 2 with one line naming the flag', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['--by', 'week'], /--by is "week": expected one of model, day, key/],
        [['--since', 'yesterday'], /--since is "yesterday": expected an ISO date .* or a time ago such as 24h, 7d/],
        [['--until', '3m'], /--until is "3m": expected an ISO date/],
        [['--since', '1d', '--until', '2d'], /--since .* must be before --until/],
        [['--sinse', '7d'], /unknown option --sinse — did you mean --since\?/],
        [['--key'], /--key needs a value/],
        [['extra'], /unexpected argument "extra"/],
      ];
      const results = await Promise.all(cases.map(([args]) => cli(...args)));
      results.forEach((result, i) => {
        assert.equal(result.code, 2, result.stderr);
        assert.equal(result.stdout, '');
        assert.equal(result.stderr.trimEnd().split('\n').length, 1);
        assert.match(result.stderr, cases[i]![1]);
      });
    });
  });
}
