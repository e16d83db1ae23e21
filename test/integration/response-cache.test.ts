import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { FakeUpstream, openAiError } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TcpSwitch } from '../helpers/tcp-switch.js';
import { usageRecord } from '../helpers/usage-records.js';

const ACCESS = 'cache-access-token-0123456789';
const ADMIN = 'cache-admin-token-0123456789';
const UPSTREAM_KEY = 'sk-cache-upstream-secret-key-000';
const SECRETS = {
  alice: 'oa-cache-alice-0000000000000000001',
  bob: 'oa-cache-bob-000000000000000000002',
  team1: 'oa-cache-team1-0000000000000000003',
  team2: 'oa-cache-team2-0000000000000000004',
  persona: 'oa-cache-persona-00000000000000005',
  plain: 'oa-cache-plain-0000000000000000006',
  off: 'oa-cache-off-000000000000000000007',
  limited: 'oa-cache-limited-00000000000000008',
};
const KEYS = [
  { name: 'alice', key: SECRETS.alice, cache_ttl: 600 },
  { name: 'bob', key: SECRETS.bob, cache_ttl: 600 },
  { name: 'team1', key: SECRETS.team1, cache_ttl: 600, cache_group: 'team' },
  { name: 'team2', key: SECRETS.team2, cache_ttl: 600, cache_group: 'team' },
  // In the team's group, but its persona makes every body it sends another body.
  { name: 'persona', key: SECRETS.persona, cache_ttl: 600, cache_group: 'team', bot_desc: 'You are a pirate.' },
  // No cache_ttl: follows the owner's cache_ttl (0 here), so only its requests can opt in.
  { name: 'plain', key: SECRETS.plain },
  // cache_ttl 0: never cached, whatever its requests ask.
  { name: 'off', key: SECRETS.off, cache_ttl: 0 },
  { name: 'limited', key: SECRETS.limited, cache_ttl: 600, rpm: 2 },
];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function cacheCounts(gateway: TestGateway): Promise<Record<string, number>> {
  const text = await (await fetch(`${gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^openai_api_cache_requests_total\{result="(\w+)"\} (\S+)$/.exec(line);
    if (match) samples.push({ name: 'openai_api_cache_requests_total', labels: { result: match[1]! }, value: Number(match[2]) });
  }
  return Object.fromEntries(samples.map((sample) => [sample.labels.result!, sample.value]));
}

const DEFAULT_REPLY = new FakeUpstream().replyText;
let unique = 0;
/** A chat body no other test sends: entries from one test never answer another. */
const chatBody = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${++unique} ${randomBytes(4).toString('hex')}` }], ...extra });

/** The whole suite, once per store: in-process (no Redis) and Redis. */
function cacheSuite(backend: 'memory' | 'redis'): void {
  describe(`response cache (${backend})`, () => {
    let upstream: FakeUpstream;
    let gateway: TestGateway;

    const post = (path: string, secret: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${gateway.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const chat = (secret: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> => post('/v1/chat/completions', secret, body, headers);

    before(async () => {
      upstream = await FakeUpstream.start();
      const env: Record<string, string> = { BASE_URL: upstream.url, APIKEY: UPSTREAM_KEY, ACCESS_TOKEN: ACCESS, ADMIN_TOKEN: ADMIN, MAX_ATTEMPTS: '1', CACHE_MAX_ENTRY_BYTES: '4KiB' };
      // A prefix of its own: entries of earlier runs (or other tests) in the same Redis are never read.
      if (backend === 'redis') Object.assign(env, { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PREFIX: `test-cache-${randomBytes(6).toString('hex')}:` });
      gateway = await startTestGateway(env, { keys: KEYS });
    });
    after(async () => {
      await gateway.close();
      await upstream.close();
    });
    beforeEach(() => {
      upstream.reset();
      upstream.replyText = DEFAULT_REPLY;
    });

    it('answers the second identical request of a key from the cache: same body, marked, one upstream request', async () => {
      const body = chatBody();
      const first = await chat(SECRETS.alice, body);
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('x-openai-api-cache'), 'miss');
      const firstText = await first.text();
      upstream.replyText = 'A different answer: only the upstream would give it.';
      const second = await chat(SECRETS.alice, { messages: body.messages, model: body.model });
      assert.equal(second.status, 200);
      assert.equal(second.headers.get('x-openai-api-cache'), 'hit');
      assert.match(second.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(await second.text(), firstText, 'the stored answer, byte for byte');
      assert.equal(upstream.requests.length, 1, 'the upstream had the first request only');
    });

    it('works with the official SDK, whose parser reads a hit like any answer', async () => {
      const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: SECRETS.alice, maxRetries: 0 });
      const body = chatBody() as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;
      const first = await client.chat.completions.create(body);
      const { data: second, response } = await client.chat.completions.create(body).withResponse();
      assert.equal(response.headers.get('x-openai-api-cache'), 'hit');
      assert.deepEqual(second, first);
      assert.equal(upstream.requests.length, 1);
    });

    it('meters a hit as cached at no cost, logs it and counts it', async () => {
      const before = await cacheCounts(gateway);
      const body = chatBody();
      const miss = await chat(SECRETS.alice, body);
      await miss.text();
      const hit = await chat(SECRETS.alice, body);
      await hit.text();
      assert.equal(hit.headers.get('x-openai-api-cache'), 'hit');
      const missRow = await usageRecord(gateway, miss.headers.get('x-request-id'));
      assert.equal(missRow.usage_source, 'upstream');
      assert.ok((missRow.cost_usd ?? 0) > 0, 'the miss cost money');
      const hitRow = await usageRecord(gateway, hit.headers.get('x-request-id'));
      assert.equal(hitRow.usage_source, 'cache');
      assert.equal(hitRow.cost_usd, 0);
      assert.equal(hitRow.prompt_tokens, 12);
      assert.equal(hitRow.cached_tokens, 12, 'the whole prompt counts as cached');
      assert.equal(hitRow.completion_tokens, 5);
      assert.equal(hitRow.upstream, null, 'no upstream answered it');
      assert.equal(hitRow.key_name, 'alice');
      const line = gateway.logs.find((entry) => entry.reqId === hit.headers.get('x-request-id') && entry.msg === 'request');
      assert.equal(line?.cache, 'hit');
      const after = await cacheCounts(gateway);
      assert.equal(after.hit! - (before.hit ?? 0), 1);
      assert.equal(after.miss! - (before.miss ?? 0), 1);
    });

    it("never answers one key with another key's entry", async () => {
      const body = chatBody();
      await (await chat(SECRETS.alice, body)).text();
      const other = await chat(SECRETS.bob, body);
      assert.equal(other.headers.get('x-openai-api-cache'), 'miss');
      await other.text();
      assert.equal(upstream.requests.length, 2, 'bob went upstream');
      const again = await chat(SECRETS.bob, body);
      assert.equal(again.headers.get('x-openai-api-cache'), 'hit', 'bob has his own entry now');
      await again.text();
    });

    it('shares entries between keys the owner put in one cache_group, and only for the same upstream body', async () => {
      const body = chatBody();
      await (await chat(SECRETS.team1, body)).text();
      const shared = await chat(SECRETS.team2, body);
      assert.equal(shared.headers.get('x-openai-api-cache'), 'hit');
      await shared.text();
      const persona = await chat(SECRETS.persona, body);
      assert.equal(persona.headers.get('x-openai-api-cache'), 'miss', 'the persona makes it another request upstream');
      await persona.text();
      assert.equal(upstream.requests.length, 2);
      assert.equal((upstream.last().json?.messages as Array<{ content: string }>)[0]?.content, 'You are a pirate.');
    });

    it('a key without caching never reads entries, and its answers carry no cache header', async () => {
      const body = chatBody();
      // The owner's access token opts in for itself and stores an entry under its own partition.
      await (await chat(ACCESS, body, { 'cache-control': 'max-age=600' })).text();
      for (const secret of [SECRETS.plain, SECRETS.off, SECRETS.plain]) {
        const response = await chat(secret, body);
        assert.equal(response.headers.get('x-openai-api-cache'), null);
        await response.text();
      }
      assert.equal(upstream.requests.length, 4);
    });

    it('replays a stream as the same event stream, which the SDK reads', async () => {
      const body = chatBody({ stream: true });
      const first = await chat(SECRETS.alice, body);
      assert.equal(first.headers.get('x-openai-api-cache'), 'miss');
      const firstBytes = Buffer.from(await first.arrayBuffer());
      assert.match(firstBytes.toString(), /data: \[DONE\]\n\n$/);
      upstream.replyText = 'Something else entirely.';
      const second = await chat(SECRETS.alice, body);
      assert.equal(second.headers.get('x-openai-api-cache'), 'hit');
      assert.match(second.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.deepEqual(Buffer.from(await second.arrayBuffer()), firstBytes);
      assert.equal(upstream.requests.length, 1);

      const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: SECRETS.alice, maxRetries: 0 });
      const stream = await client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsStreaming);
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      assert.equal(text, 'Hello from the fake upstream.');
      assert.equal(upstream.requests.length, 1, 'still one upstream request');
      const row = await usageRecord(gateway, second.headers.get('x-request-id'));
      assert.equal(row.usage_source, 'cache');
      assert.equal(row.total_tokens, 17, 'the usage the stream reported when it was stored');
    });

    it('keeps streamed and whole answers apart', async () => {
      const body = chatBody();
      await (await chat(SECRETS.alice, body)).text();
      const streamed = await chat(SECRETS.alice, { ...body, stream: true });
      assert.equal(streamed.headers.get('x-openai-api-cache'), 'miss');
      assert.match(await streamed.text(), /^data: /);
    });

    it('no-store bypasses the cache both ways; no-cache goes upstream and refreshes the entry', async () => {
      const body = chatBody();
      const bypass = await chat(SECRETS.alice, body, { 'cache-control': 'no-store' });
      assert.equal(bypass.headers.get('x-openai-api-cache'), 'bypass');
      await bypass.text();
      const stillMiss = await chat(SECRETS.alice, body);
      assert.equal(stillMiss.headers.get('x-openai-api-cache'), 'miss', 'no-store stored nothing');
      await stillMiss.text();
      upstream.replyText = 'Fresher.';
      const refreshed = await chat(SECRETS.alice, body, { 'cache-control': 'no-cache' });
      assert.equal(refreshed.headers.get('x-openai-api-cache'), 'miss');
      const fresh = await refreshed.text();
      assert.match(fresh, /Fresher\./);
      const hit = await chat(SECRETS.alice, body);
      assert.equal(hit.headers.get('x-openai-api-cache'), 'hit');
      assert.equal(await hit.text(), fresh, 'the refreshed answer');
      assert.equal(upstream.requests.length, 3);
      const counts = await cacheCounts(gateway);
      assert.ok((counts.bypass ?? 0) >= 1, 'the bypass is counted');
    });

    it('lets a request opt in with Cache-Control: max-age, and sends no cache header upstream', async () => {
      const body = chatBody();
      const first = await chat(SECRETS.plain, body, { 'cache-control': 'max-age=300' });
      assert.equal(first.headers.get('x-openai-api-cache'), 'miss');
      await first.text();
      const second = await chat(SECRETS.plain, body, { 'x-openai-api-cache-ttl': '300' });
      assert.equal(second.headers.get('x-openai-api-cache'), 'hit');
      await second.text();
      assert.equal(upstream.requests.length, 1);
      assert.equal(upstream.last().headers['cache-control'], undefined);
      assert.equal(upstream.last().headers['x-openai-api-cache-ttl'], undefined);
    });

    it('refuses requests that ask for several samples or a stored completion (bypass)', async () => {
      for (const extra of [{ n: 2 }, { store: true }]) {
        const body = chatBody(extra);
        for (let i = 0; i < 2; i++) {
          const response = await chat(SECRETS.alice, body);
          assert.equal(response.headers.get('x-openai-api-cache'), 'bypass');
          await response.text();
        }
      }
      assert.equal(upstream.requests.length, 4);
    });

    it('leaves endpoints it does not serve alone, even for a caching key', async () => {
      const response = await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${SECRETS.alice}` } });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-openai-api-cache'), null);
      await response.text();
    });

    it("counts a hit toward the key's request limits", async () => {
      const body = chatBody();
      const statuses: Array<[number, string | null]> = [];
      for (let i = 0; i < 3; i++) {
        const response = await chat(SECRETS.limited, body);
        statuses.push([response.status, response.headers.get('x-openai-api-cache')]);
        await response.text();
      }
      assert.deepEqual(statuses, [
        [200, 'miss'],
        [200, 'hit'],
        [429, null],
      ]);
      assert.equal(upstream.requests.length, 1);
    });

    it('never stores an error answer', async () => {
      const body = chatBody();
      upstream.failWith(500, openAiError(500, 'The server had an error.', 'server_error', null));
      const failed = await chat(SECRETS.alice, body);
      assert.equal(failed.status, 500);
      await failed.text();
      const retried = await chat(SECRETS.alice, body);
      assert.equal(retried.status, 200);
      assert.equal(retried.headers.get('x-openai-api-cache'), 'miss');
      await retried.text();
      assert.equal(upstream.requests.length, 2);
    });

    it('never stores a stream that ended without [DONE]', async () => {
      const body = chatBody({ stream: true });
      upstream.script(async (_request, response) => {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.end('data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hal"},"finish_reason":null}]}\n\n');
      });
      const cut = await chat(SECRETS.alice, body);
      assert.match(await cut.text(), /error/);
      const again = await chat(SECRETS.alice, body);
      assert.equal(again.headers.get('x-openai-api-cache'), 'miss');
      await again.text();
      assert.equal(upstream.requests.length, 2);
    });

    it('does not store an answer larger than cache_max_entry_bytes', async () => {
      upstream.replyText = 'word '.repeat(1200);
      const body = chatBody();
      await (await chat(SECRETS.alice, body)).text();
      const again = await chat(SECRETS.alice, body);
      assert.equal(again.headers.get('x-openai-api-cache'), 'miss');
      await again.text();
      assert.equal(upstream.requests.length, 2);
    });

    it('caches completions and embeddings', async () => {
      for (const [path, body] of [
        ['/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: `say ${++unique}` }],
        ['/v1/embeddings', { model: 'text-embedding-3-small', input: `embed ${++unique}` }],
      ] as const) {
        const first = await post(path, SECRETS.alice, body);
        const firstText = await first.text();
        assert.equal(first.headers.get('x-openai-api-cache'), 'miss', path);
        const second = await post(path, SECRETS.alice, body);
        assert.equal(second.headers.get('x-openai-api-cache'), 'hit', path);
        assert.equal(await second.text(), firstText);
      }
      assert.equal(upstream.requests.length, 2);
    });

    it('takes cache_ttl and cache_group set through the admin API, and stops caching when cache_ttl becomes 0', async () => {
      const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
        const response = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
        return { status: response.status, json: (await response.json()) as Record<string, unknown> };
      };
      const created = await admin('POST', '/admin/keys', { name: `cached-${backend}`, cache_ttl: 120, cache_group: 'team' });
      assert.equal(created.status, 201);
      assert.equal(created.json.cache_ttl, 120);
      assert.equal(created.json.cache_group, 'team');
      const secret = created.json.key as string;
      const body = chatBody();
      await (await chat(SECRETS.team1, body)).text();
      const shared = await chat(secret, body);
      assert.equal(shared.headers.get('x-openai-api-cache'), 'hit', "the new key reads its group's entry");
      await shared.text();
      const patched = await admin('PATCH', `/admin/keys/cached-${backend}`, { cache_ttl: 0 });
      assert.equal(patched.json.cache_ttl, 0);
      const off = await chat(secret, body);
      assert.equal(off.headers.get('x-openai-api-cache'), null);
      await off.text();
      assert.equal(upstream.requests.length, 2);
      const cleared = await admin('PATCH', `/admin/keys/cached-${backend}`, { cache_ttl: null, cache_group: null });
      assert.equal(cleared.json.cache_ttl, null);
      assert.equal(cleared.json.cache_group, null);
    });

    it('caches /api/chat answers, whole and streamed, in its own envelope', async () => {
      for (const stream of [false, true]) {
        const body = { prompt: `seed route ${++unique}`, stream };
        const first = await post('/api/chat', SECRETS.alice, body);
        const firstText = await first.text();
        assert.equal(first.headers.get('x-openai-api-cache'), 'miss');
        upstream.replyText = `changed ${unique}`;
        const second = await post('/api/chat', SECRETS.alice, body);
        assert.equal(second.headers.get('x-openai-api-cache'), 'hit');
        const secondText = await second.text();
        assert.equal(secondText, firstText);
        if (stream) assert.match(secondText, /event: done\ndata: \{"code":200/);
        else assert.equal(JSON.parse(secondText).code, 200);
      }
      assert.equal(upstream.requests.length, 2);
    });
  });
}

cacheSuite('memory');
cacheSuite('redis');

describe('response cache in a shared Redis', () => {
  const prefix = `test-cache-shared-${randomBytes(6).toString('hex')}:`;
  let upstream: FakeUpstream;
  let gateways: TestGateway[];
  let redis: Redis;

  before(async () => {
    upstream = await FakeUpstream.start();
    const env = { BASE_URL: upstream.url, APIKEY: UPSTREAM_KEY, ACCESS_TOKEN: ACCESS, MAX_ATTEMPTS: '1', REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PREFIX: prefix };
    // Two instances, each with its own database: what they share is Redis (and the group name).
    gateways = [await startTestGateway(env, { keys: KEYS }), await startTestGateway(env, { keys: KEYS })];
    redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
    await redis.connect();
  });
  after(async () => {
    for (const gateway of gateways) await gateway.close();
    await upstream.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it("serves one instance's stored answer on another", async () => {
    const body = chatBody();
    const send = (gateway: TestGateway, secret: string): Promise<Response> => fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const first = await send(gateways[0]!, SECRETS.team1);
    assert.equal(first.headers.get('x-openai-api-cache'), 'miss');
    const firstText = await first.text();
    const second = await send(gateways[1]!, SECRETS.team2);
    assert.equal(second.headers.get('x-openai-api-cache'), 'hit');
    assert.equal(await second.text(), firstText);
    assert.equal(upstream.requests.length, 1);
  });

  it('keeps entries under the prefix with their TTL, holding the answer and never the prompt', async () => {
    const body = chatBody();
    const prompt = (body.messages as Array<{ content: string }>)[0]!.content;
    await (await fetch(`${gateways[0]!.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${SECRETS.alice}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).text();
    let keys: string[] = [];
    // The write is not awaited by the request: give it a moment.
    for (let i = 0; i < 50 && keys.length === 0; i++) {
      keys = [];
      for (const key of await redis.keys(`${prefix}cache:*`)) {
        const value = await redis.getBuffer(key);
        if (value?.includes(DEFAULT_REPLY) && !keys.includes(key)) keys.push(key);
      }
      if (keys.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(keys.length > 0, 'an entry was written');
    for (const key of keys) {
      assert.match(key, new RegExp(`^${prefix}cache:[0-9a-f]{64}$`));
      const ttl = await redis.pttl(key);
      assert.ok(ttl > 0 && ttl <= 600_000, `expires (${ttl} ms left)`);
      const value = (await redis.getBuffer(key))!;
      assert.ok(!value.includes(prompt), 'the request is not stored, only its hash');
    }
  });
});

describe('response cache while Redis is down', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  let link: TcpSwitch;

  before(async () => {
    upstream = await FakeUpstream.start();
    link = await TcpSwitch.start('127.0.0.1', 6379);
    gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: UPSTREAM_KEY, ACCESS_TOKEN: ACCESS, MAX_ATTEMPTS: '1', REDIS_URL: `redis://127.0.0.1:${link.port}`, REDIS_PREFIX: `test-cache-down-${randomBytes(6).toString('hex')}:`, CACHE_TTL: '600', FAIL_OPEN: 'true' });
  });
  after(async () => {
    link.restore();
    await waitFor(() => gateway.gateway.redis?.healthy === true);
    await gateway.close();
    await link.close();
    await upstream.close();
  });

  it('answers from the upstream while Redis is unreachable (a read is a miss, a write is skipped), and from the cache once it is back', async () => {
    const body = chatBody();
    const send = (): Promise<Response> => fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${ACCESS}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const stored = await send();
    assert.equal(stored.headers.get('x-openai-api-cache'), 'miss');
    const storedText = await stored.text();
    await waitFor(async () => (await send().then(async (response) => (await response.text(), response.headers.get('x-openai-api-cache')))) === 'hit');
    link.cut();
    await waitFor(() => gateway.gateway.redis?.healthy === false);
    const before = upstream.requests.length;
    for (let i = 0; i < 2; i++) {
      const response = await send();
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-openai-api-cache'), 'miss');
      await response.text();
    }
    assert.equal(upstream.requests.length, before + 2, 'both went upstream');
    link.restore();
    await waitFor(() => gateway.gateway.redis?.healthy === true);
    const back = await send();
    assert.equal(back.headers.get('x-openai-api-cache'), 'hit', 'the entry stored before the outage');
    assert.equal(await back.text(), storedText);
  });
});

/** Polls `check` every 20 ms for up to 10 s (a reconnect backs off up to 2 s). */
async function waitFor(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail('condition not reached in 10 s');
}
