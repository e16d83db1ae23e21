import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LatencyAnswer, PublicKey, StatusAnswer, UsageReportRow } from '../../src/admin/console-types.js';
import { FakeUpstream, openAiError } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

// What the web console needs of the admin listener, over real HTTP: the sign-in's rate limit and
// cookie, key changes that clear attributes, rotation, usage by upstream and hour, latency
// figures, and the upstreams' last errors with their keys masked. (The pages themselves are
// driven in Chromium by console.test.ts.)

const ADMIN = 'admin-token-console-api-0123456789';
const UPSTREAM_KEY = 'sk-upstream-consoleapi-0123456789abcdef';
const json = { 'content-type': 'application/json' };

function signIn(adminUrl: string, token: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${adminUrl}/console/session`, { method: 'POST', headers: { ...json, 'sec-fetch-site': 'same-origin', ...headers }, body: JSON.stringify({ token }) });
}

describe('the console sign-in', () => {
  let gateway: TestGateway;
  let proxied: TestGateway;

  before(async () => {
    gateway = await startTestGateway({ ADMIN_TOKEN: ADMIN, ACCESS_TOKEN: 'access-token-console-api' });
    proxied = await startTestGateway({ ADMIN_TOKEN: ADMIN, ACCESS_TOKEN: 'access-token-console-api', TRUST_PROXY: 'true' });
  });
  after(async () => {
    await gateway?.close();
    await proxied?.close();
  });

  it('behind a trusted proxy, counts per forwarded address: another client signs in meanwhile, and a success clears the count', async () => {
    const admin = proxied.adminUrl!;
    const from = (address: string) => ({ 'x-forwarded-for': `10.9.9.9, ${address}` });
    for (let i = 0; i < 9; i++) assert.equal((await signIn(admin, 'wrong-token-xxxxxxxxxxxx', from('203.0.113.9'))).status, 401);
    assert.equal((await signIn(admin, ADMIN, from('203.0.113.9'))).status, 200, 'nine failures, then the right token');
    for (let i = 0; i < 10; i++) assert.equal((await signIn(admin, 'wrong-token-xxxxxxxxxxxx', from('203.0.113.9'))).status, 401, 'the success cleared the count');
    assert.equal((await signIn(admin, ADMIN, from('203.0.113.9'))).status, 429);
    assert.equal((await signIn(admin, ADMIN, from('198.51.100.7'))).status, 200, 'another address is not held up');
  });

  it('marks the session cookie Secure only over TLS or when a trusted proxy says https', async () => {
    const cookie = async (target: TestGateway, headers: Record<string, string>) => {
      const answer = await signIn(target.adminUrl!, ADMIN, headers);
      assert.equal(answer.status, 200);
      return answer.headers.get('set-cookie')!;
    };
    const plain = await cookie(gateway, { 'x-forwarded-for': '192.0.2.1' });
    assert.doesNotMatch(plain, /Secure/);
    assert.match(plain, /HttpOnly; SameSite=Strict/);
    assert.doesNotMatch(await cookie(proxied, { 'x-forwarded-proto': 'http', 'x-forwarded-for': '192.0.2.2' }), /Secure/);
    const secure = await cookie(proxied, { 'x-forwarded-proto': 'https', 'x-forwarded-for': '192.0.2.3' });
    assert.match(secure, /; Secure/);
    // Sign-out clears the cookie with the same attributes.
    const id = /openai_api_console=([^;]+)/.exec(secure)![1]!;
    const session = (await (await fetch(`${proxied.adminUrl}/console/session`, { headers: { cookie: `openai_api_console=${id}` } })).json()) as { csrf_token: string };
    const out = await fetch(`${proxied.adminUrl}/console/session`, { method: 'DELETE', headers: { cookie: `openai_api_console=${id}`, 'x-csrf-token': session.csrf_token, 'sec-fetch-site': 'same-origin', 'x-forwarded-proto': 'https' } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie')!, /Max-Age=0; Secure/);
    // Without trust_proxy, a forwarded https is not believed.
    assert.doesNotMatch(await cookie(gateway, { 'x-forwarded-proto': 'https' }), /Secure/);
  });

  it('refuses a change from another origin with csrf_refused', async () => {
    const answer = await signIn(proxied.adminUrl!, ADMIN, { 'x-forwarded-for': '192.0.2.50' });
    const id = /openai_api_console=([^;]+)/.exec(answer.headers.get('set-cookie')!)![1]!;
    const { csrf_token: csrf } = (await answer.json()) as { csrf_token: string };
    const refused = await fetch(`${proxied.adminUrl}/admin/keys`, { method: 'POST', headers: { ...json, cookie: `openai_api_console=${id}`, 'x-csrf-token': csrf, origin: 'http://evil.example' }, body: JSON.stringify({ name: 'evil' }) });
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'csrf_refused');
    const foreignSignIn = await fetch(`${proxied.adminUrl}/console/session`, { method: 'POST', headers: { ...json, origin: 'http://evil.example' }, body: JSON.stringify({ token: ADMIN }) });
    assert.equal(((await foreignSignIn.json()) as { error: { code: string } }).error.code, 'csrf_refused');
  });

  it('refuses an address after 10 wrong tokens in a minute with 429 and Retry-After, the right token included', async () => {
    const admin = gateway.adminUrl!;
    for (let i = 0; i < 10; i++) assert.equal((await signIn(admin, `wrong-token-${i}-xxxxxxxx`)).status, 401, `wrong token ${i + 1}`);
    const refused = await signIn(admin, ADMIN);
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'too_many_sign_ins');
    // Without trust_proxy, X-Forwarded-For is the client's to forge: it changes nothing.
    assert.equal((await signIn(admin, ADMIN, { 'x-forwarded-for': '198.51.100.20' })).status, 429);
    // The Bearer token on the admin API is not the sign-in form: it still works.
    assert.equal((await fetch(`${admin}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN}` } })).status, 200);
  });
});

describe('the admin API behind the console', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  let admin: string;
  const call = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const answer = await fetch(`${admin}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : json) }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: answer.status, body: (answer.status === 204 ? undefined : await answer.json()) as T };
  };
  const chat = (key: string) =>
    fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, ...json }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }) });

  before(async () => {
    upstream = await FakeUpstream.start();
    gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: UPSTREAM_KEY, ADMIN_TOKEN: ADMIN, MAX_ATTEMPTS: '1' }, { keys: [{ name: 'from-config', key: 'oa-from-config-0123456789abcdefghij' }] });
    admin = gateway.adminUrl!;
  });
  after(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  it('sets and then clears (null) limits, models, persona, defaults and expiry; refuses what is not a valid change', async () => {
    assert.equal((await call('POST', '/admin/keys', { name: 'edited' })).status, 201);
    const set = await call<PublicKey>('PATCH', '/admin/keys/edited', {
      rpm: 5, models: ['gpt-4o*'], bot_desc: 'You are terse.', persona_mode: 'replace', defaults: { temperature: 0.2, max_tokens: 64 }, expires_at: '2099-01-01T00:00:00Z', budget_usd: 3, budget_period: 'month',
    });
    assert.equal(set.status, 200);
    assert.deepEqual(
      { rpm: set.body.rpm, models: set.body.models, bot_desc: set.body.bot_desc, persona_mode: set.body.persona_mode, defaults: set.body.defaults, expires_at: set.body.expires_at, budget_usd: set.body.budget_usd, budget_period: set.body.budget_period },
      { rpm: 5, models: ['gpt-4o*'], bot_desc: 'You are terse.', persona_mode: 'replace', defaults: { temperature: 0.2, max_tokens: 64 }, expires_at: '2099-01-01T00:00:00.000Z', budget_usd: 3, budget_period: 'month' },
    );
    const cleared = await call<PublicKey>('PATCH', '/admin/keys/edited', { rpm: null, models: null, bot_desc: null, persona_mode: null, defaults: null, expires_at: null, tpm: 7 });
    assert.equal(cleared.status, 200);
    assert.deepEqual(
      { rpm: cleared.body.rpm, tpm: cleared.body.tpm, models: cleared.body.models, bot_desc: cleared.body.bot_desc, persona_mode: cleared.body.persona_mode, defaults: cleared.body.defaults, expires_at: cleared.body.expires_at, budget_usd: cleared.body.budget_usd },
      { rpm: null, tpm: 7, models: null, bot_desc: null, persona_mode: null, defaults: null, expires_at: null, budget_usd: 3 },
    );
    assert.equal((await call('PATCH', '/admin/keys/edited', { enabled: null })).status, 400, 'enabled cannot be cleared');
    assert.equal((await call('PATCH', '/admin/keys/edited', { persona_mode: 'shout' })).status, 400);
    assert.equal((await call('PATCH', '/admin/keys/edited', { rpm: -1 })).status, 400);
    assert.equal((await call('PATCH', '/admin/keys/edited', { defaults: { temperature: 9 } })).status, 400);
    assert.equal((await call('PATCH', '/admin/keys/edited', { nonsense: null })).status, 400, 'an unknown attribute is refused, null or not');
    assert.equal((await call('PATCH', '/admin/keys/from-config', { rpm: null })).status, 409, 'a key from config.json is changed there');
    assert.equal((await call('PATCH', '/admin/keys/nobody', { rpm: null })).status, 404);
  });

  it('sets and then clears (null) conversation memory and response cache settings; refuses values out of bounds', async () => {
    const pick = (key: PublicKey) => ({ memory: key.memory, memory_max_tokens: key.memory_max_tokens, memory_max_turns: key.memory_max_turns, memory_ttl: key.memory_ttl, cache_ttl: key.cache_ttl, cache_group: key.cache_group });
    const settings = { memory: false, memory_max_tokens: 2000, memory_max_turns: 8, memory_ttl: 3600, cache_ttl: 0, cache_group: 'bots' };
    assert.equal((await call('POST', '/admin/keys', { name: 'remembering' })).status, 201);
    const set = await call<PublicKey>('PATCH', '/admin/keys/remembering', settings);
    assert.equal(set.status, 200);
    assert.deepEqual(pick(set.body), settings, 'false and 0 are settings, not blanks');
    const cleared = await call<PublicKey>('PATCH', '/admin/keys/remembering', { memory: null, memory_max_tokens: null, memory_max_turns: null, memory_ttl: null, cache_ttl: null, cache_group: null });
    assert.equal(cleared.status, 200);
    const none = { memory: null, memory_max_tokens: null, memory_max_turns: null, memory_ttl: null, cache_ttl: null, cache_group: null };
    assert.deepEqual(pick(cleared.body), none);
    assert.deepEqual(pick((await call<PublicKey>('GET', '/admin/keys/remembering')).body), none, 'the clearing is stored');
    for (const refused of [{ memory_max_turns: 0 }, { memory_max_turns: 1001 }, { memory_ttl: 31_536_001 }, { cache_ttl: -1 }, { cache_ttl: 1.5 }, { cache_group: 'two words' }, { memory: 'on' }]) {
      assert.equal((await call('PATCH', '/admin/keys/remembering', refused)).status, 400, JSON.stringify(refused));
    }
  });

  it('rotates a key: the old secret is refused at once and the new one works', async () => {
    const created = await call<{ key: string }>('POST', '/admin/keys', { name: 'rotated' });
    assert.equal((await chat(created.body.key)).status, 200);
    const rotated = await call<PublicKey & { key: string }>('POST', '/admin/keys/rotated/rotate');
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.key, created.body.key);
    assert.equal(rotated.body.prefix, rotated.body.key.slice(0, rotated.body.prefix.length));
    assert.equal((await chat(created.body.key)).status, 401);
    assert.equal((await chat(rotated.body.key)).status, 200);
    const listed = JSON.stringify((await call('GET', '/admin/keys')).body);
    assert.ok(!listed.includes(rotated.body.key), 'the list never carries a secret');
  });

  it('reports usage filtered by upstream and grouped by upstream and by hour', async () => {
    await gateway.gateway.writer.flush();
    const since = new Date(Date.now() - 3_600_000).toISOString();
    const byUpstream = await call<{ data: UsageReportRow[] }>('GET', `/admin/usage?by=upstream&since=${since}`);
    assert.equal(byUpstream.status, 200);
    const row = byUpstream.body.data.find((r) => r.group === 'default');
    assert.ok(row && row.requests >= 2 && row.totalTokens >= 34, JSON.stringify(byUpstream.body.data));
    const filtered = await call<{ data: UsageReportRow[] }>('GET', `/admin/usage?by=key&upstream=default&since=${since}`);
    assert.deepEqual(filtered.body.data.map((r) => r.group), ['rotated']);
    const none = await call<{ data: UsageReportRow[] }>('GET', `/admin/usage?by=key&upstream=elsewhere&since=${since}`);
    assert.deepEqual(none.body.data, []);
    const byHour = await call<{ data: UsageReportRow[] }>('GET', `/admin/usage?by=hour&since=${since}`);
    assert.ok(byHour.body.data.length >= 1 && byHour.body.data.every((r) => /^\d{4}-\d\d-\d\dT\d\d$/.test(r.group)), JSON.stringify(byHour.body.data));
    assert.equal(byHour.body.data.reduce((n, r) => n + r.requests, 0), byUpstream.body.data.reduce((n, r) => n + r.requests, 0));
    assert.equal((await call('GET', '/admin/usage?by=week')).status, 400);
  });

  it('answers p50/p95 latency, overhead and upstream time over the requests kept in memory', async () => {
    const answer = await call<LatencyAnswer>('GET', `/admin/latency?since=${new Date(Date.now() - 3_600_000).toISOString()}`);
    assert.equal(answer.status, 200);
    const { samples, latency_ms: total, overhead_ms: overhead, upstream_ms: upstreamTime } = answer.body;
    assert.ok(samples >= 2, `samples ${samples}`); // the two requests of the rotated key (refused ones have no key)
    for (const figures of [total, overhead, upstreamTime]) {
      assert.ok(figures.p50 !== null && figures.p95 !== null && figures.p50 >= 0 && figures.p50 <= figures.p95, JSON.stringify(answer.body));
    }
    assert.ok(overhead.p50! <= total.p95! + 1, 'the overhead is part of the total');
    const future = await call<LatencyAnswer>('GET', `/admin/latency?since=${new Date(Date.now() + 60_000).toISOString()}`);
    assert.deepEqual(future.body, { samples: 0, oldest: null, latency_ms: { p50: null, p95: null }, overhead_ms: { p50: null, p95: null }, upstream_ms: { p50: null, p95: null } });
  });

  it("shows each upstream's last errors with the status or code, and never its key", async () => {
    const key = (await call<{ key: string }>('POST', '/admin/keys', { name: 'errors' })).body.key;
    upstream.failWith(500, openAiError(500, 'The server had an error', 'server_error', null));
    assert.equal((await chat(key)).status, 500);
    upstream.failWith(429, openAiError(429, `Rate limit reached for key ${UPSTREAM_KEY} on requests`, 'requests', 'rate_limit_exceeded'), { 'retry-after': '0' });
    assert.equal((await chat(key)).status, 429);
    const status = await call<StatusAnswer>('GET', '/admin/status');
    const errors = status.body.upstreams.find((u) => u.name === 'default')!.lastErrors;
    assert.equal(errors.length, 2, JSON.stringify(errors));
    assert.deepEqual([errors[0]!.status, errors[0]!.code, errors[0]!.keyIndex], [429, 'rate_limited', 0]);
    assert.match(errors[0]!.message, /^Rate limit reached for key \S*\[redacted\] on requests$/);
    assert.deepEqual([errors[1]!.status, errors[1]!.code, errors[1]!.message], [500, null, 'HTTP 500']);
    assert.ok(Date.parse(errors[0]!.time) >= Date.parse(errors[1]!.time));
    const text = JSON.stringify(status.body);
    assert.ok(!text.includes(UPSTREAM_KEY) && !text.includes(UPSTREAM_KEY.slice(-12)), 'no upstream key in the status');
  });
});
