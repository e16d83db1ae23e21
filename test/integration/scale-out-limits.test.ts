import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { chatCompletion, FakeUpstream, sendJson } from '../helpers/fake-upstream.js';
import { requirePostgres, type TestDatabase } from '../helpers/databases.js';
import { spawnGateway, startTestGateway, tempConfigDir, type SpawnedGateway } from '../helpers/gateway.js';
import { dropRedisPrefix, requireRedis, testRedisPrefix } from '../helpers/redis.js';
import { TcpSwitch } from '../helpers/tcp-switch.js';

/**
 * Several real gateway processes sharing one PostgreSQL schema and one Redis prefix: the limits
 * of issue 15 hold across instances, survive restarts and instance deaths, and follow fail_open
 * while Redis is away. Redis is reached through a TcpSwitch, so a test can take it away.
 */
const redis = requireRedis();
const postgres = requirePostgres();
const skip = redis.skip || postgres.skip;

const MODEL = 'gpt-4o-mini';
/** $0.001 a token either way, so a cost is tokens / 1000. */
const PRICES = { [MODEL]: { input: 1000, output: 1000 } };
const MAX_TOKENS = 100;
const KEYS = {
  rpm: { name: 'rpm-10', key_env: 'KEY_RPM', key: 'oa-scale-rpm-0123456789', rpm: 10 },
  tpm: { name: 'tpm-1000', key_env: 'KEY_TPM', key: 'oa-scale-tpm-0123456789', tpm: 1000 },
  usd: { name: 'usd-1', key_env: 'KEY_USD', key: 'oa-scale-usd-0123456789', budget_usd: 1, budget_period: 'day' },
  rpd: { name: 'rpd-5', key_env: 'KEY_RPD', key: 'oa-scale-rpd-0123456789', rpd: 5 },
  kill: { name: 'budget-kill', key_env: 'KEY_KILL', key: 'oa-scale-kill-0123456789', budget_tokens: 1000, budget_period: 'total' },
  load: { name: 'load', key_env: 'KEY_LOAD', key: 'oa-scale-load-0123456789', rpm: 100_000, rpd: 1_000_000 },
} as const;
/** Reservations hold for connect + first byte + 10 idle timeouts: 1 + 4 + 10 × 0.5 = 10 s here. */
const HOLD_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Answer {
  status: number;
  code: string | undefined;
  headers: Headers;
  ms: number;
}

describe('limits shared by several instances (Redis + PostgreSQL)', { skip }, () => {
  const prefix = testRedisPrefix();
  let upstream: FakeUpstream;
  let database: TestDatabase;
  let relay: TcpSwitch;
  let cwd: string;
  let env: Record<string, string>;
  let gateways: SpawnedGateway[] = [];

  async function chat(url: string, key: { key: string }, body: Record<string, unknown> = {}): Promise<Answer> {
    const started = Date.now();
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: MAX_TOKENS, ...body }),
      signal: AbortSignal.timeout(20_000),
    });
    const json = (await response.json()) as { error?: { code?: string } };
    return { status: response.status, code: json.error?.code, headers: response.headers, ms: Date.now() - started };
  }

  const startAll = (count: number): Promise<SpawnedGateway[]> => Promise.all(Array.from({ length: count }, () => spawnGateway({ env, cwd })));

  async function stopAll(list: SpawnedGateway[]): Promise<void> {
    for (const gateway of list) gateway.child.kill('SIGTERM');
    await Promise.all(list.map((gateway) => gateway.exited));
  }

  async function usageOf(keyName: string): Promise<Array<{ status: number; total_tokens: number; cost_usd: number | null }>> {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ status: number; total_tokens: number; cost_usd: number | null }>('select status, total_tokens, cost_usd from usage_records where key_name = $1', [keyName]);
      return rows;
    } finally {
      await client.end();
    }
  }

  before(async () => {
    upstream = await FakeUpstream.start();
    database = await postgres.open();
    const target = new URL(redis.url);
    relay = await TcpSwitch.start(target.hostname, Number(target.port || 6379));
    const redisUrl = new URL(redis.url);
    redisUrl.port = String(relay.port);
    cwd = tempConfigDir({ prices: PRICES, keys: Object.values(KEYS).map(({ key: _key, ...entry }) => entry) });
    env = {
      BASE_URL: upstream.url,
      APIKEY: 'sk-upstream-scale-out',
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl.toString(),
      REDIS_PREFIX: prefix,
      USAGE_FLUSH_INTERVAL: '0.2',
      MAX_ATTEMPTS: '1',
      CONNECT_TIMEOUT: '1',
      FIRST_BYTE_TIMEOUT: '4',
      IDLE_TIMEOUT: '0.5',
      ...Object.fromEntries(Object.values(KEYS).map((key) => [key.key_env, key.key])),
    };
  });

  after(async () => {
    for (const gateway of gateways) gateway.child.kill('SIGKILL');
    await Promise.all(gateways.map((gateway) => gateway.exited));
    await relay.close();
    await upstream.close();
    await database.cleanup();
    await dropRedisPrefix(redis.url, prefix);
  });

  it('three instances started at once migrate a fresh PostgreSQL schema once and all serve', async () => {
    const schemaTables = async (): Promise<string[]> => {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ name: string }>("select table_name as name from information_schema.tables where table_schema = current_schema() order by 1");
        return rows.map((row) => row.name);
      } finally {
        await client.end();
      }
    };
    // Nothing but the gateway's own tables exist yet (the helper's migration was undone above).
    await database.db.schema.dropTable('kysely_migration_lock').ifExists().execute();
    for (const table of await schemaTables()) await database.db.schema.dropTable(table).ifExists().cascade().execute();
    assert.deepEqual(await schemaTables(), []);
    gateways = await startAll(3);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string; count: string }>('select name, count(*) as count from kysely_migration group by name');
      assert.ok(rows.length > 0);
      assert.ok(rows.every((row) => row.count === '1'), JSON.stringify(rows));
    } finally {
      await client.end();
    }
    for (const gateway of gateways) assert.equal((await chat(gateway.url, KEYS.load)).status, 200);
  });

  it('admits exactly rpm requests of 60 spread over three instances', async () => {
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => chat(gateways[i % 3]!.url, KEYS.rpm)));
    assert.equal(answers.filter((answer) => answer.status === 200).length, 10);
    const refused = answers.filter((answer) => answer.status === 429);
    assert.equal(refused.length, 50);
    assert.ok(refused.every((answer) => answer.code === 'rate_limit_exceeded'));
    const retryAfter = Number(refused[0]!.headers.get('retry-after'));
    assert.ok(retryAfter >= 55 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    const remaining = answers.filter((answer) => answer.status === 200).map((answer) => Number(answer.headers.get('x-ratelimit-remaining-requests')));
    assert.deepEqual(remaining.sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('never lets tpm or a USD budget be exceeded across instances', async (t) => {
    // The upstream answers nothing until every request is decided: all admitted ones are in
    // flight at once, so what the instances admit is exactly what the shared state had room for.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    upstream.reset();
    upstream.script(async (_request, response) => {
      await gate;
      sendJson(response, 200, chatCompletion(MODEL, 'gated'));
    }, 120);
    let refusedCount = 0;
    const send = (key: { key: string }, i: number) =>
      chat(gateways[i % 3]!.url, key).then((answer) => {
        if (answer.status !== 200) refusedCount += 1;
        return answer;
      });
    const answered = Promise.all([Promise.all(Array.from({ length: 60 }, (_, i) => send(KEYS.tpm, i))), Promise.all(Array.from({ length: 60 }, (_, i) => send(KEYS.usd, i)))]);
    const deadline = Date.now() + 10_000;
    while (refusedCount + upstream.requests.length < 120 && Date.now() < deadline) await sleep(5);
    release();
    const [tpm, usd] = await answered;
    upstream.reset();
    const admittedTpm = tpm.filter((answer) => answer.status === 200);
    assert.ok(admittedTpm.length >= 1);
    // Each request reserves its estimate (prompt + max_tokens, > 100 tokens): 1000 tokens hold at most 9 of them, whichever instance.
    assert.ok(admittedTpm.length <= 9, `${admittedTpm.length} admitted`);
    const remaining = admittedTpm.map((answer) => Number(answer.headers.get('x-ratelimit-remaining-tokens')));
    assert.equal(new Set(remaining).size, remaining.length, 'each admission saw the others, on every instance');
    assert.ok(Math.min(...remaining) >= 0);
    assert.ok(tpm.filter((answer) => answer.status !== 200).every((answer) => answer.status === 429 && answer.code === 'rate_limit_exceeded'));

    const admittedUsd = usd.filter((answer) => answer.status === 200);
    // Each request may cost (prompt + 100 tokens) × $0.001 > $0.10: at most 9 within $1.
    assert.ok(admittedUsd.length >= 1 && admittedUsd.length <= 9, `${admittedUsd.length} admitted`);
    assert.ok(usd.filter((answer) => answer.status !== 200).every((answer) => answer.status === 429 && answer.code === 'budget_exceeded'));
    await sleep(1000);
    const records = (await usageOf(KEYS.usd.name)).filter((row) => row.status === 200);
    assert.equal(records.length, admittedUsd.length);
    const spent = records.reduce((sum, row) => sum + (row.cost_usd ?? 0), 0);
    assert.ok(spent <= 1, `spent $${spent}`);
    t.diagnostic(`tpm: ${admittedTpm.length} admitted; USD: ${admittedUsd.length} admitted, $${spent.toFixed(3)} recorded`);
    const tokens = (await usageOf(KEYS.tpm.name)).filter((row) => row.status === 200).reduce((sum, row) => sum + row.total_tokens, 0);
    assert.ok(tokens <= 1000, `${tokens} tokens in the minute`);
  });

  it('an instance killed mid-load: the others serve on, its usage records up to the last flush are kept, its reservations expire', async () => {
    const victim = gateways[2]!;
    // Usage the victim served more than a flush interval (0.2 s) before it dies is in the database.
    const before = (await usageOf(KEYS.load.name)).length;
    for (let i = 0; i < 3; i += 1) assert.equal((await chat(victim.url, KEYS.load)).status, 200);
    await sleep(1000);
    // Two requests of the budget key hang upstream on the victim, holding all of its 1,000 tokens … almost.
    upstream.script(() => undefined, 2);
    const seen = upstream.requests.length;
    const hanging = [chat(victim.url, KEYS.kill, { max_tokens: 450 }), chat(victim.url, KEYS.kill, { max_tokens: 450 })].map((answer) => answer.catch(() => undefined));
    const deadline = Date.now() + 5000;
    while (upstream.requests.length < seen + 2 && Date.now() < deadline) await sleep(10);
    assert.equal(upstream.requests.length, seen + 2);
    const heldAt = Date.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    await Promise.all(hanging);
    const survivors = gateways.slice(0, 2);
    const refused = await chat(survivors[0]!.url, KEYS.kill, { max_tokens: 200 });
    assert.equal(refused.status, 429, 'the dead instance still holds the budget');
    assert.equal(refused.code, 'budget_exceeded');
    // Meanwhile the others serve.
    const served = await Promise.all(Array.from({ length: 10 }, (_, i) => chat(survivors[i % 2]!.url, KEYS.load)));
    assert.ok(served.every((answer) => answer.status === 200));
    await sleep(1000);
    assert.equal((await usageOf(KEYS.load.name)).length, before + 3 + 10, 'nothing the victim flushed is lost; the survivors record theirs');
    // After the hold's deadline the next admission drops the orphaned reservations.
    await sleep(Math.max(0, heldAt + HOLD_MS + 500 - Date.now()));
    const after = await chat(survivors[1]!.url, KEYS.kill, { max_tokens: 200 });
    assert.equal(after.status, 200, `after the deadline: ${after.status} ${after.code}`);
    gateways = [...survivors, await spawnGateway({ env, cwd })];
  });

  it('rpd survives a restart of every instance', async () => {
    for (let i = 0; i < 3; i += 1) assert.equal((await chat(gateways[i]!.url, KEYS.rpd)).status, 200);
    await stopAll(gateways);
    gateways = await startAll(3);
    const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => chat(gateways[i % 3]!.url, KEYS.rpd)));
    assert.equal(answers.filter((answer) => answer.status === 200).length, 2);
    const refused = answers.find((answer) => answer.status === 429)!;
    assert.equal(refused.code, 'rate_limit_exceeded');
    assert.equal(refused.headers.get('x-ratelimit-limit-requests'), '5');
    assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');
  });

  it('Redis cut mid-load: 503 limits_unavailable (or, with fail_open, local limits), no request hangs, and recovery without a restart', async (t) => {
    const open = await startTestGateway({ ...env, FAIL_OPEN: 'true', LOG_LEVEL: 'info' }, { prices: PRICES, keys: Object.values(KEYS).map(({ key: _key, ...entry }) => entry) });
    try {
      let running = true;
      const answers: Answer[] = [];
      const load = (async () => {
        while (running) {
          const batch = await Promise.all(gateways.map((gateway) => chat(gateway.url, KEYS.load)));
          answers.push(...batch);
        }
      })();
      await sleep(300);
      relay.cut();
      await sleep(1500);
      const during = await Promise.all(gateways.map((gateway) => chat(gateway.url, KEYS.load)));
      assert.deepEqual(during.map((answer) => [answer.status, answer.code]), gateways.map(() => [503, 'limits_unavailable']));
      const fallback = await chat(open.url, KEYS.load);
      assert.equal(fallback.status, 200, 'fail_open: the instance applies its own limits');
      relay.restore();
      const deadline = Date.now() + 15_000;
      let back: Answer[] = [];
      while (Date.now() < deadline) {
        back = await Promise.all(gateways.map((gateway) => chat(gateway.url, KEYS.load)));
        if (back.every((answer) => answer.status === 200)) break;
        await sleep(200);
      }
      running = false;
      await load;
      assert.deepEqual(back.map((answer) => answer.status), [200, 200, 200], 'recovered without a restart');
      assert.ok(answers.some((answer) => answer.status === 503));
      assert.ok(answers.every((answer) => answer.status === 200 || (answer.status === 503 && answer.code === 'limits_unavailable')), JSON.stringify(answers.map((a) => [a.status, a.code])));
      const slowest = Math.max(...answers.map((answer) => answer.ms));
      assert.ok(slowest < 5000, `no request hung (slowest ${slowest} ms)`);
      t.diagnostic(`${answers.length} requests under load, ${answers.filter((answer) => answer.status === 503).length} refused 503; slowest ${slowest} ms`);
      const outages = open.logs.filter((line) => line.msg === 'redis unreachable; until it recovers, shared limits follow fail_open, key changes come by the poll and the cache misses');
      assert.equal(outages.length, 1, 'the outage is logged once');
    } finally {
      await open.close();
    }
  });
});
