import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { storageBackends, type TestDatabase } from '../helpers/databases.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ADMIN = 'admin-token-0123456789abcdef';
const HOUR = 3_600_000;

for (const backend of storageBackends()) {
  describe(`usage rollups through the gateway on ${backend.name}`, () => {
    let upstream: FakeUpstream;
    let database: TestDatabase;
    let gateway: TestGateway;

    const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
      const response = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await response.text();
      return { status: response.status, json: text ? JSON.parse(text) : undefined };
    };
    const createKey = async (attributes: Record<string, unknown>): Promise<{ secret: string; id: string }> => {
      const { status, json } = await admin('POST', '/admin/keys', attributes);
      assert.equal(status, 201, JSON.stringify(json));
      const row = await database.db.selectFrom('app_keys').select('id').where('name', '=', attributes['name'] as string).executeTakeFirstOrThrow();
      return { secret: (json as { key: string }).key, id: row.id };
    };
    const chat = (key: string, model = 'gpt-4o-mini') =>
      fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }] }) });

    before(async () => {
      upstream = await FakeUpstream.start();
      database = await backend.open();
      gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: 'sk-upstream-rollup', ADMIN_TOKEN: ADMIN, DATABASE_URL: database.url, MAX_ATTEMPTS: '1' });
    });
    after(async () => {
      await gateway.close();
      await database.cleanup();
      await upstream.close();
    });

    it('every request lands in the hourly and daily rollups with the flush that writes its raw row', async () => {
      const { secret } = await createKey({ name: 'rolled', models: ['gpt-4o-mini', 'gpt-4o'] });
      for (const model of ['gpt-4o-mini', 'gpt-4o', 'gpt-4o-mini', 'o3-mini']) await (await chat(secret, model)).arrayBuffer();
      upstream.failWith(500, { error: { message: 'boom', type: 'server_error' } });
      await (await chat(secret)).arrayBuffer();
      await gateway.gateway.writer.flush();
      // The rollups against the raw rows summed per hour and per day, in SQL this time.
      const normalise = (rows: Array<Record<string, unknown>>) =>
        rows.map((row) => JSON.stringify(Object.entries(row).map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v]))).sort();
      for (const [table, period, length, suffix] of [['usage_hourly', 'hour', 13, ':00:00.000Z'], ['usage_daily', 'day', 10, 'T00:00:00.000Z']] as const) {
        const fromRaw = await sql<Record<string, unknown>>`
          select substr(ts, 1, ${sql.lit(length)}) || ${sql.lit(suffix)} as period, key_id, key_name, model, upstream, count(*) as requests,
            sum(case when status >= 400 or error_code is not null then 1 else 0 end) as errors,
            sum(case when error_code in ('model_not_allowed', 'rate_limit_exceeded', 'budget_exceeded') then 1 else 0 end) as refused,
            sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens, sum(total_tokens) as total_tokens
          from usage_records group by substr(ts, 1, ${sql.lit(length)}), key_id, key_name, model, upstream`.execute(database.db);
        const rollup = await sql<Record<string, unknown>>`
          select ${sql.ref(period)} as period, key_id, key_name, model, upstream, requests, errors, refused, prompt_tokens, completion_tokens, total_tokens
          from ${sql.table(table)}`.execute(database.db);
        assert.deepEqual(normalise(rollup.rows), normalise(fromRaw.rows), table);
      }
      const rollup = await database.db.selectFrom('usage_hourly').selectAll().execute();
      const mine = rollup.filter((row) => row.key_name === 'rolled');
      const total = (pick: (row: (typeof mine)[number]) => number) => mine.reduce((sum, row) => sum + Number(pick(row)), 0);
      assert.deepEqual([total((row) => row.requests), total((row) => row.errors), total((row) => row.refused)], [5, 2, 1], 'o3-mini refused (model_not_allowed), one upstream 500');
    });

    it('a budget baseline and /admin/usage count usage only the rollups still hold (raw rows past retention)', async () => {
      const { secret, id } = await createKey({ name: 'capped', budget_tokens: 1000, budget_period: 'total' });
      // 200 days ago: its raw rows are long gone, its hour and day stay in the rollups.
      const hour = new Date(Math.floor((Date.now() - 200 * 24 * HOUR) / HOUR) * HOUR).toISOString();
      const sums = { key_id: id, key_name: 'capped', model: 'gpt-4o-mini', upstream: 'default', requests: 40, errors: 0, refused: 0, refused_tokens: 0, refused_cost_usd: 0, prompt_tokens: 600, completion_tokens: 400, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 1000, cost_usd: 0.25 };
      await database.db.insertInto('usage_hourly').values({ hour, ...sums }).execute();
      await database.db.insertInto('usage_daily').values({ day: `${hour.slice(0, 10)}T00:00:00.000Z`, ...sums }).execute();
      const refused = await chat(secret);
      assert.equal(refused.status, 429);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'budget_exceeded');
      await gateway.gateway.writer.flush();
      const { status, json } = await admin('GET', '/admin/usage?by=key&key=capped');
      assert.equal(status, 200, JSON.stringify(json));
      const [row] = (json as { data: Array<{ group: string; requests: number; totalTokens: number; errors: number }> }).data;
      assert.deepEqual([row?.group, row?.requests, row?.totalTokens, row?.errors], ['capped', 41, 1000, 1]);
    });
  });
}
