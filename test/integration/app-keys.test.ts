import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { chatStreamEvents, FakeUpstream, sendSse } from '../helpers/fake-upstream.js';
import { storageBackends, type TestDatabase } from '../helpers/databases.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ADMIN = 'admin-token-0123456789abcdef';
const ACCESS = 'shared-access-token';
const CONFIG_SECRET = 'config-key-secret-0123456789';

interface KeyView {
  name: string;
  key?: string;
  prefix: string;
  enabled: boolean;
  [field: string]: unknown;
}

for (const backend of storageBackends()) {
  describe(`app keys on ${backend.name}`, () => {
    let upstream: FakeUpstream;
    let database: TestDatabase;
    let gateway: TestGateway;

    const admin = async (method: string, path: string, body?: unknown, token = ADMIN): Promise<{ status: number; json: unknown }> => {
      const response = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await response.text();
      return { status: response.status, json: text ? JSON.parse(text) : undefined };
    };
    const createKey = async (attributes: Record<string, unknown>): Promise<string> => {
      const { status, json } = await admin('POST', '/admin/keys', attributes);
      assert.equal(status, 201, JSON.stringify(json));
      return (json as KeyView).key!;
    };
    const chat = (key: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
      fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], ...body }) });
    const apiChat = async (key: string, body: Record<string, unknown>) => {
      const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return (await response.json()) as { code: number; data: string | null; msg: string };
    };
    const records = async () => {
      await gateway.gateway.writer.flush();
      return database.db.selectFrom('usage_records').selectAll().orderBy('id').execute();
    };

    before(async () => {
      upstream = await FakeUpstream.start();
      database = await backend.open();
      gateway = await startTestGateway(
        { BASE_URL: upstream.url, APIKEY: 'sk-upstream-app-keys', ACCESS_TOKEN: ACCESS, ADMIN_TOKEN: ADMIN, DATABASE_URL: database.url, BOT_DESC: 'global persona', MAX_ATTEMPTS: '1' },
        { keys: [{ name: 'from-config', key: CONFIG_SECRET, models: ['gpt-4o*'], rpd: 1000 }] },
      );
    });
    after(async () => {
      await gateway.close();
      await database.cleanup();
      await upstream.close();
    });
    beforeEach(() => upstream.reset());

    it('runs the key lifecycle through the admin API', async () => {
      const secret = await createKey({ name: 'lifecycle', models: ['gpt-4o-mini'] });
      assert.match(secret, /^oa-[0-9A-Za-z]{43}$/);
      assert.equal((await chat(secret)).status, 200);
      assert.equal(upstream.last().headers.authorization, 'Bearer sk-upstream-app-keys');

      const listed = (await admin('GET', '/admin/keys')).json as { data: KeyView[] };
      const view = listed.data.find((k) => k.name === 'lifecycle');
      assert.ok(view && view.prefix === secret.slice(0, 11));
      assert.ok(!JSON.stringify(listed).includes(secret), 'no secret in listings');
      assert.ok(!JSON.stringify(listed).includes('hash'), 'no hash in listings');

      assert.equal((await admin('POST', '/admin/keys/lifecycle/disable')).status, 200);
      const disabled = await chat(secret);
      assert.equal(disabled.status, 401);
      assert.match(((await disabled.json()) as { error: { message: string } }).error.message, /disabled/);
      await admin('POST', '/admin/keys/lifecycle/enable');
      assert.equal((await chat(secret)).status, 200);

      const rotated = (await admin('POST', '/admin/keys/lifecycle/rotate')).json as KeyView;
      assert.notEqual(rotated.key, secret);
      assert.equal((await chat(secret)).status, 401);
      assert.equal((await chat(rotated.key!)).status, 200);

      assert.equal((await admin('DELETE', '/admin/keys/lifecycle')).status, 204);
      assert.equal((await chat(rotated.key!)).status, 401);
      assert.equal((await admin('GET', '/admin/keys/lifecycle')).status, 404);
    });

    it('stores only a SHA-256 hash and a prefix of a secret', async () => {
      const secret = await createKey({ name: 'hashed' });
      const rows = await database.db.selectFrom('app_keys').selectAll().where('name', '=', 'hashed').execute();
      const raw = JSON.stringify(rows);
      assert.ok(!raw.includes(secret) && !raw.includes(secret.slice(11)), 'the secret is nowhere in the row');
      assert.match(String(rows[0]?.key_hash), /^[0-9a-f]{64}$/);
    });

    it('refuses admin calls with a wrong token and malformed bodies, changing nothing', async () => {
      assert.equal((await admin('GET', '/admin/keys', undefined, 'wrong-token-wrong-token')).status, 401);
      const before = JSON.stringify(((await admin('GET', '/admin/keys')).json as { data: KeyView[] }).data.map((k) => [k.name, k.rpm, k.enabled]));
      for (const body of [{ name: 'bad name!' }, { name: 'x', rpm: -1 }, { name: 'x', rmp: 5 }, { name: 'x', budget_period: 'week' }, 'not json']) {
        const { status, json } = await admin('POST', '/admin/keys', body);
        assert.equal(status, 400, JSON.stringify(json));
        assert.ok((json as { error: { message: string } }).error.message.length > 5);
      }
      assert.equal((await admin('PATCH', '/admin/keys/from-config', { rpm: 5 })).status, 409, 'config keys are managed in config.json');
      const after = JSON.stringify(((await admin('GET', '/admin/keys')).json as { data: KeyView[] }).data.map((k) => [k.name, k.rpm, k.enabled]));
      assert.equal(after, before);
    });

    it('creates a key with endpoint grants, shows and replaces them, and refuses a malformed grant naming the field', async () => {
      const { status, json } = await admin('POST', '/admin/keys', { name: 'granted', endpoints: ['POST /v1/fine_tuning/jobs', '* /v1/evals*'] });
      assert.equal(status, 201, JSON.stringify(json));
      assert.deepEqual((json as KeyView).endpoints, ['POST /v1/fine_tuning/jobs', '* /v1/evals*']);
      assert.deepEqual(((await admin('GET', '/admin/keys/granted')).json as KeyView).endpoints, ['POST /v1/fine_tuning/jobs', '* /v1/evals*']);
      const listed = ((await admin('GET', '/admin/keys')).json as { data: KeyView[] }).data;
      assert.deepEqual(listed.find((k) => k.name === 'granted')?.endpoints, ['POST /v1/fine_tuning/jobs', '* /v1/evals*']);

      const patched = await admin('PATCH', '/admin/keys/granted', { endpoints: ['GET /v1/models/*'] });
      assert.equal(patched.status, 200);
      assert.deepEqual((patched.json as KeyView).endpoints, ['GET /v1/models/*']);

      for (const [body, message] of [
        [{ name: 'bad-grant', endpoints: ['GET /v1/models/*', 'post /v1/files'] }, /^endpoints\[1\]: method "post" is not one of GET, POST, PUT, PATCH, DELETE or \*$/],
        [{ name: 'bad-grant', endpoints: ['GET /v1/files/../models'] }, /^endpoints\[0\]: path "\/v1\/files\/\.\.\/models" contains "\.\."/],
        [{ name: 'bad-grant', endpoints: 'GET /v1/files' }, /^endpoints: /],
      ] as const) {
        const refused = await admin('POST', '/admin/keys', body);
        assert.equal(refused.status, 400, JSON.stringify(refused.json));
        const error = (refused.json as { error: { message: string; param: string | null } }).error;
        assert.match(error.message, message);
        assert.match(String(error.param), /^endpoints/);
      }
      assert.equal((await admin('GET', '/admin/keys/bad-grant')).status, 404);
      const refusedPatch = await admin('PATCH', '/admin/keys/granted', { endpoints: ['GET /v1/%2A'] });
      assert.equal(refusedPatch.status, 400);
      assert.match((refusedPatch.json as { error: { message: string } }).error.message, /^endpoints\[0\]: path "\/v1\/%2A" contains "%"/);
      assert.deepEqual(((await admin('GET', '/admin/keys/granted')).json as KeyView).endpoints, ['GET /v1/models/*']);

      const plain = await admin('POST', '/admin/keys', { name: 'plain-for-grants' });
      assert.equal((plain.json as KeyView).endpoints, null);
      await admin('DELETE', '/admin/keys/plain-for-grants');
    });

    it('serves config.json keys and keeps access tokens unrestricted', async () => {
      assert.equal((await chat(CONFIG_SECRET)).status, 200);
      const forbidden = await chat(CONFIG_SECRET, { model: 'o3' });
      assert.equal(forbidden.status, 403);
      assert.equal(((await forbidden.json()) as { error: { code: string } }).error.code, 'model_not_allowed');
      assert.equal((await chat(ACCESS, { model: 'o3' })).status, 200);
    });

    it('answers a model outside the key in the seed envelope on /api/chat', async () => {
      const result = await apiChat(CONFIG_SECRET, { prompt: 'hi', model: 'gpt-3.5-turbo-instruct' });
      assert.equal(result.code, 403);
      assert.match(result.msg, /may not use model "gpt-3.5-turbo-instruct"/);
      assert.equal(upstream.requests.length, 0);
    });

    it('admits exactly rpm requests when 50 arrive at once, with Retry-After and x-ratelimit headers', async () => {
      const secret = await createKey({ name: 'rpm10', rpm: 10 });
      const responses = await Promise.all(Array.from({ length: 50 }, () => chat(secret)));
      const statuses = responses.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 200).length, 10);
      assert.equal(statuses.filter((s) => s === 429).length, 40);
      const limited = responses.find((r) => r.status === 429)!;
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      assert.equal(limited.headers.get('x-ratelimit-limit-requests'), '10');
      assert.equal(limited.headers.get('x-ratelimit-remaining-requests'), '0');
      assert.match(limited.headers.get('x-ratelimit-reset-requests') ?? '', /^\d+(\.\d+)?(ms|s|m\d+s)$|^\d+m\d+s$/);
      assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'rate_limit_exceeded');
      const ok = responses.find((r) => r.status === 200)!;
      assert.equal(ok.headers.get('x-ratelimit-limit-requests'), '10');
      assert.equal(upstream.requests.length, 10);
      await Promise.all(responses.filter((r) => !r.bodyUsed).map((r) => r.body?.cancel()));
    });

    it('applies the same limits on /api/chat and on pass-through /v1 paths', async () => {
      const secret = await createKey({ name: 'rpm2', rpm: 2 });
      assert.equal((await apiChat(secret, { prompt: 'one' })).code, 200);
      const models = await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } });
      assert.equal(models.status, 200);
      assert.equal((await apiChat(secret, { prompt: 'three' })).code, 429);
      assert.equal((await fetch(`${gateway.url}/v1/files`, { headers: { authorization: `Bearer ${secret}` } })).status, 429);
    });

    it('rejects a request whose token estimate passes tpm before it reaches the upstream', async () => {
      const secret = await createKey({ name: 'tpm', tpm: 100 });
      const response = await chat(secret, { max_tokens: 500 });
      assert.equal(response.status, 429);
      assert.match(((await response.json()) as { error: { message: string } }).error.message, /token/i);
      assert.equal(upstream.requests.length, 0);
      assert.equal((await chat(secret, { max_tokens: 20 })).status, 200);
    });

    it('exhausts a token budget, then an admin raise resets the decision', async () => {
      const secret = await createKey({ name: 'budget', budget_tokens: 40, budget_period: 'day' });
      // The fake answers with 17 total tokens per request.
      assert.equal((await chat(secret)).status, 200);
      assert.equal((await chat(secret)).status, 200);
      const third = await chat(secret);
      assert.equal(third.status, 429);
      assert.equal(((await third.json()) as { error: { code: string } }).error.code, 'budget_exceeded');
      await admin('PATCH', '/admin/keys/budget', {}).then(({ status }) => assert.equal(status, 200));
      assert.equal((await chat(secret)).status, 429, 'spent tokens are reloaded from the database');
      await admin('PATCH', '/admin/keys/budget', { budget_tokens: 100 });
      assert.equal((await chat(secret)).status, 200);
    });

    it("applies the key's persona, defaults and max_tokens ceiling", async () => {
      const secret = await createKey({ name: 'persona', bot_desc: 'You are a pirate.', persona_mode: 'replace', defaults: { model: 'gpt-4o', temperature: 0.2 }, max_tokens_ceiling: 64 });
      assert.equal((await apiChat(secret, { messages: [{ role: 'system', content: 'be nice' }, { role: 'user', content: 'hi' }] })).code, 200);
      const sent = upstream.last().json!;
      assert.equal(sent.model, 'gpt-4o');
      assert.equal(sent.temperature, 0.2);
      assert.equal(sent.max_tokens, 64);
      assert.deepEqual(sent.messages, [{ role: 'system', content: 'You are a pirate.' }, { role: 'user', content: 'hi' }]);
      await chat(secret, { model: undefined, max_tokens: 1000 });
      const relayed = upstream.last().json!;
      assert.equal(relayed.model, 'gpt-4o');
      assert.equal(relayed.max_tokens, 64);
      assert.deepEqual(relayed.messages, [{ role: 'system', content: 'You are a pirate.' }, { role: 'user', content: 'Hi' }]);
    });

    it("refuses a browser origin outside the key's allow_origin", async () => {
      const secret = await createKey({ name: 'web', allow_origin: 'https://app.example' });
      const allowed = await chat(secret, {}, { origin: 'https://app.example' });
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example');
      const refused = await chat(secret, {}, { origin: 'https://evil.example' });
      assert.equal(refused.status, 403);
      assert.equal(refused.headers.get('access-control-allow-origin'), null);
    });

    it('meters streamed, aborted and failed requests with cost and source', async () => {
      const secret = await createKey({ name: 'metered' });
      const before = (await records()).length;
      const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: secret, maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true });
      for await (const chunk of stream) void chunk;

      upstream.script((request, response) => sendSse(response, chatStreamEvents('gpt-4o-mini', 'a b c d e f g h i j k l m n o p q r s t', true), { delayMs: 100 }));
      const controller = new AbortController();
      const cut = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true }, { signal: controller.signal });
      const iterator = cut[Symbol.asyncIterator]();
      await iterator.next();
      await iterator.next();
      controller.abort();
      await iterator.next().catch(() => undefined);
      await upstream.last().closed;

      upstream.failWith(500, { error: { message: 'boom', type: 'server_error', param: null, code: null } });
      await chat(secret);

      let rows = await records();
      for (let i = 0; i < 20 && rows.length < before + 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        rows = await records();
      }
      const mine = rows.slice(before).filter((r) => r.key_name === 'metered');
      assert.equal(mine.length, 3);
      const [streamed, aborted, failed] = mine;
      assert.equal(streamed!.usage_source, 'upstream');
      assert.equal(streamed!.total_tokens, 17);
      assert.equal(streamed!.model, 'gpt-4o-mini');
      assert.ok(Math.abs(Number(streamed!.cost_usd) - (12 * 0.15 + 5 * 0.6) / 1e6) < 1e-12, 'cost from the price table');
      assert.ok(Number(streamed!.ttfb_ms) > 0);
      assert.equal(aborted!.aborted, 1);
      assert.equal(aborted!.status, 499);
      assert.equal(aborted!.usage_source, 'estimated');
      assert.ok(Number(aborted!.completion_tokens) >= 1 && Number(aborted!.prompt_tokens) > 0);
      assert.equal(failed!.status, 500);
      assert.equal(failed!.usage_source, 'none');
      assert.equal(failed!.error_code, 'upstream_500');
      const touched = await database.db.selectFrom('app_keys').select('last_used_at').where('name', '=', 'metered').executeTakeFirst();
      assert.ok(touched?.last_used_at, 'last_used_at is recorded');
    });

    it('reports usage through /admin/usage with filters', async () => {
      const secret = await createKey({ name: 'reported' });
      for (let i = 0; i < 3; i++) assert.equal((await chat(secret)).status, 200);
      // Another key's request, which the filter leaves out.
      assert.equal((await chat(CONFIG_SECRET)).status, 200);
      type UsageRow = { group: string; requests: number; totalTokens: number };
      const usage = async (query: string): Promise<UsageRow[]> => {
        await gateway.gateway.writer.flush();
        const { status, json } = await admin('GET', `/admin/usage?${query}`);
        assert.equal(status, 200, JSON.stringify(json));
        return (json as { data: UsageRow[] }).data;
      };
      let rows = await usage('by=key&key=reported');
      for (let i = 0; i < 20 && rows[0]?.requests !== 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        rows = await usage('by=key&key=reported');
      }
      assert.deepEqual(rows.map((row) => [row.group, row.requests, row.totalTokens]), [['reported', 3, 51]]);
      const everyKey = (await usage('by=key')).map((row) => row.group);
      assert.ok(everyKey.includes('reported') && everyKey.includes('from-config'), `unfiltered: ${everyKey.join(', ')}`);
      assert.equal((await admin('GET', '/admin/usage?by=week')).status, 400);
    });
  });
}

describe('admin API switched off', () => {
  it('does not listen without admin_token', async () => {
    const gateway = await startTestGateway({ ACCESS_TOKEN: ACCESS });
    try {
      assert.equal(gateway.adminUrl, undefined);
      const response = await fetch(`${gateway.url}/admin/keys`, { headers: { authorization: `Bearer ${ACCESS}` } });
      assert.equal(response.status, 404);
    } finally {
      await gateway.close();
    }
  });
});
