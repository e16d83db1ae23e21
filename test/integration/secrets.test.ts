import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { chatStreamEvents, FakeUpstream, sendJson, sendSse, type Handler } from '../helpers/fake-upstream.js';
import { runCli, spawnGateway, startTestGateway, tempConfigDir, type TestGateway } from '../helpers/gateway.js';

/**
 * The gateway runs with known secrets (upstream keys, access token, app keys, admin token); a
 * broad set of requests — successes and every error path we can reach — is driven through it,
 * and no log line, response body, response header, admin answer or CLI output may contain any of
 * them. Each test drives its own requests and scans what it saw, so each stands alone.
 */

// Upstream keys in two shapes: OpenAI-like (a generic `sk-…` pattern would catch it) and plain (only exact redaction does).
const UPSTREAM_SK = 'sk-proj-SecretUpstreamAlpha0123456789abcdefXYZ';
const UPSTREAM_PLAIN = 'e3b0c44298fc1c149afbf4c8996fb924secretplain';
const UPSTREAM_ECHO_1 = 'echo-key-secret-number-one-0123456789';
const UPSTREAM_ECHO_2 = 'echo-key-secret-number-two-0123456789';
const UPSTREAM_ECHO_LIST = 'echo-key-secret-of-the-model-list-0123456789';
const SEED_API_KEY = 'seed-api-key-secret-0123456789abcdef';
const ACCESS_TOKEN = 'access-token-secret-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-secret-0123456789abcdef';
const CONFIG_APP_KEY = 'config-app-key-secret-0123456789abcdef';

/** Raw HTTP exchange (for requests fetch will not send: absolute-form targets, odd Host headers). */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
    socket.write(request);
  });
}

/** What one test saw: every response (status, headers, body) and CLI output it captured. */
type Seen = Array<{ what: string; text: string }>;

describe('secrets stay secret', () => {
  let fake: FakeUpstream;
  let echo: FakeUpstream;
  let echoList: FakeUpstream;
  let gateway: TestGateway;
  /** A key made through the admin API before the tests; each test may use it. */
  let appKey = '';
  /** Keys a test made for itself: once they exist, every scan looks for them too. */
  const madeByTests: string[] = [];
  const secrets = (): string[] => [UPSTREAM_SK, UPSTREAM_PLAIN, UPSTREAM_ECHO_1, UPSTREAM_ECHO_2, UPSTREAM_ECHO_LIST, SEED_API_KEY, ACCESS_TOKEN, ADMIN_TOKEN, CONFIG_APP_KEY, appKey, ...madeByTests];

  const capture = async (seen: Seen, what: string, response: Response): Promise<void> => {
    const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join('\n');
    seen.push({ what, text: `${response.status}\n${headers}\n\n${await response.text()}` });
  };
  /** Requests through the gateway and its admin API, each answer captured into `seen` for the scan. */
  const client = (seen: Seen) => {
    const call = async (what: string, path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> => {
      const { token = ACCESS_TOKEN, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token !== null) headers.set('authorization', `Bearer ${token}`);
      if (rest.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
      const response = await fetch(`${gateway.url}${path}`, { ...rest, headers });
      await capture(seen, what, response.clone());
      return response;
    };
    const admin = async (what: string, method: string, path: string, body?: unknown, token: string = ADMIN_TOKEN): Promise<Response> => {
      const response = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
      await capture(seen, what, response.clone());
      return response;
    };
    const chat = (what: string, model: string, extra: Record<string, unknown> = {}, token?: string) => call(what, '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }], ...extra }), token });
    return { call, admin, chat };
  };
  /** The one answer that shows a secret, on purpose: not captured. */
  const newKey = async (method: string, path: string, body?: unknown): Promise<string> => {
    const response = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    assert.equal(response.status, method === 'POST' && !path.endsWith('/rotate') ? 201 : 200, `${method} ${path}`);
    return ((await response.json()) as { key: string }).key;
  };
  const logLines = (): number => gateway.logs.length;

  /**
   * No secret in what this test captured nor anywhere in the gateway's log; no caller credential in
   * any request that reached an upstream (a query string is the caller's own and is relayed as is —
   * see SECURITY.md). The whole log and every upstream request are scanned, not only this test's
   * share: a line written late for a finished request is scanned all the same.
   */
  const assertNothingLeaked = (seen: Seen, minimum: number): void => {
    assert.ok(seen.length >= minimum, `${seen.length} exchanges captured, expected at least ${minimum}`);
    const logs = gateway.logText();
    for (const secret of secrets()) {
      for (const { what, text } of seen) assert.ok(!text.includes(secret), `${what} shows a secret: ${text.slice(0, 400)}`);
      assert.ok(!logs.includes(secret), `a log line shows a secret: ${logs.split('\n').find((line) => line.includes(secret))}`);
    }
    const callerSecrets = [ACCESS_TOKEN, ADMIN_TOKEN, CONFIG_APP_KEY, appKey, ...madeByTests];
    for (const request of [...fake.requests, ...echo.requests, ...echoList.requests]) {
      const sent = JSON.stringify(request.headers) + request.body.toString('utf8');
      for (const secret of callerSecrets) assert.ok(!sent.includes(secret), `a caller credential went upstream: ${request.method} ${request.path}`);
    }
  };

  before(async () => {
    fake = await FakeUpstream.start();
    echo = await FakeUpstream.start();
    echoList = await FakeUpstream.start();
    // Providers that echo the key they were sent in their error messages (some do). The one that
    // serves echo-* lists its models normally: a listing of every upstream's models (another
    // test's) then leaves its keys usable for the test about it. The other refuses even its model
    // list, and only listings reach it.
    const refuseEchoingKey: Handler = (request, response) => {
      const sent = String(request.headers.authorization ?? '').replace(/^Bearer /, '');
      sendJson(response, 401, { error: { message: `Incorrect API key provided: ${sent}. You can find your API key at https://example.invalid.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    };
    echo.script((request, response, socket) => {
      if (request.path === '/v1/models') return sendJson(response, 200, { object: 'list', data: [{ id: 'echo-model', object: 'model', created: 0, owned_by: 'echo' }] });
      return refuseEchoingKey(request, response, socket);
    }, Infinity);
    echoList.script(refuseEchoingKey, Infinity);
    gateway = await startTestGateway(
      { APIKEY: SEED_API_KEY, ACCESS_TOKEN, ADMIN_TOKEN, MAX_ATTEMPTS: '2', RETRY_BASE_DELAY: '0', FIRST_BYTE_TIMEOUT: '1', LOG_LEVEL: 'debug' },
      {
        upstreams: [
          { name: 'primary', type: 'openai', base_url: fake.url, api_keys: [UPSTREAM_SK, UPSTREAM_PLAIN], models: ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'] },
          { name: 'echoing', type: 'openai-compatible', base_url: echo.url, api_keys: [UPSTREAM_ECHO_1, UPSTREAM_ECHO_2], models: ['echo-*'] },
          { name: 'echoing-list', type: 'openai-compatible', base_url: echoList.url, api_keys: [UPSTREAM_ECHO_LIST], models: ['listed-only'] },
        ],
        keys: [{ name: 'from-config', key: CONFIG_APP_KEY, models: ['gpt-4o*'], metadata: { team: 'secrets-test' } }],
      },
    );
    appKey = await newKey('POST', '/admin/keys', { name: 'made-by-admin', models: ['gpt-4o-mini'], metadata: { owner: 'someone' } });
  });
  after(async () => {
    await gateway.close();
    await fake.close();
    await echo.close();
    await echoList.close();
  });

  it('successes: /v1 (plain, streamed, embeddings, models), /api/chat, with the access token, a config key, an admin-made key and a rotated one', async () => {
    const seen: Seen = [];
    const { call, admin, chat } = client(seen);
    const logged = logLines();
    for (const token of [ACCESS_TOKEN, CONFIG_APP_KEY, appKey]) {
      assert.equal((await chat('chat', 'gpt-4o-mini', {}, token)).status, 200);
      assert.equal((await chat('stream', 'gpt-4o-mini', { stream: true }, token)).status, 200);
      assert.equal((await call('api-chat', '/api/chat', { method: 'POST', body: '{"prompt":"Hi","stream":true}', token })).status, 200);
    }
    assert.equal((await call('embeddings', '/v1/embeddings', { method: 'POST', body: '{"model":"text-embedding-3-small","input":"x"}' })).status, 200);
    assert.equal((await call('models', '/v1/models')).status, 200);
    assert.equal((await call('api-key header', '/v1/models', { token: null, headers: { 'api-key': ACCESS_TOKEN } })).status, 200);
    assert.equal((await call('healthz', '/healthz', { token: null })).status, 200);
    // A key of this test's own, so rotating it leaves the shared one alone.
    const beforeRotation = await newKey('POST', '/admin/keys', { name: 'rotated-by-admin', models: ['gpt-4o-mini'] });
    madeByTests.push(beforeRotation);
    assert.equal((await chat('key before rotation', 'gpt-4o-mini', {}, beforeRotation)).status, 200);
    const rotated = await newKey('POST', '/admin/keys/rotated-by-admin/rotate');
    madeByTests.push(rotated);
    assert.equal((await chat('old key after rotation', 'gpt-4o-mini', {}, beforeRotation)).status, 401);
    assert.equal((await chat('rotated key', 'gpt-4o-mini', {}, rotated)).status, 200);
    assert.equal((await admin('rotated key shown', 'GET', '/admin/keys/rotated-by-admin')).status, 200);
    assert.ok(logLines() > logged, 'the requests were logged');
    assertNothingLeaked(seen, 17);
  });

  it('an upstream that echoes its key in a 401 (and mid-stream): the key never reaches the client, the log or the admin API', async () => {
    const seen: Seen = [];
    const { call, admin, chat } = client(seen);
    const logged = logLines();
    const v1 = await chat('echoed 401 /v1', 'echo-model');
    assert.equal(v1.status, 401);
    const body = (await v1.json()) as { error: { message: string } };
    assert.match(body.error.message, /Incorrect API key provided: \[redacted\]/);
    const envelope = (await (await call('echoed 401 /api/chat', '/api/chat', { method: 'POST', body: '{"prompt":"Hi","model":"echo-model"}' })).json()) as { code: number; msg: string };
    assert.equal(envelope.code, 502);
    // Both keys are now disabled; the next request says so, still without them.
    await chat('every key disabled', 'echo-model');
    // The admin API reports the disabled keys and why, by hint only.
    assert.equal((await admin('status after echoed 401', 'GET', '/admin/status')).status, 200);
    fake.script((request, response) => {
      const sent = String(request.headers.authorization ?? '').replace(/^Bearer /, '');
      void sendSse(response, [chatStreamEvents('gpt-4o-mini', 'hi', false)[1]!, JSON.stringify({ error: { message: `key ${sent} was revoked`, type: 'invalid_request_error', code: 'revoked' } })]);
    }, 2);
    await chat('echoed mid-stream /v1', 'gpt-4o-mini', { stream: true });
    await call('echoed mid-stream /api/chat', '/api/chat', { method: 'POST', body: '{"prompt":"Hi","stream":true}' });
    assert.ok(logLines() > logged, 'the requests were logged');
    assertNothingLeaked(seen, 6);
  });

  it('error paths: bad and misplaced tokens, bad bodies, unknown routes and models, upstream failures', async () => {
    const seen: Seen = [];
    const { call, chat } = client(seen);
    const logged = logLines();
    // A secret presented where it does not belong is refused without being echoed.
    for (const wrong of [UPSTREAM_SK, UPSTREAM_PLAIN, ADMIN_TOKEN, `${ACCESS_TOKEN}x`, ACCESS_TOKEN.slice(0, -1)]) {
      assert.equal((await chat('wrong token', 'gpt-4o-mini', {}, wrong)).status, 401);
      assert.equal(((await (await call('wrong token api-chat', '/api/chat', { method: 'POST', body: '{"prompt":"Hi"}', token: wrong })).json()) as { code: number }).code, 401);
    }
    assert.equal((await call('no token', '/v1/models', { token: null })).status, 401);
    assert.equal((await call('basic auth', '/v1/models', { token: null, headers: { authorization: `Basic ${Buffer.from(`user:${ACCESS_TOKEN}`).toString('base64')}` } })).status, 401);
    assert.equal((await call('bad json', '/v1/chat/completions', { method: 'POST', body: `{"model":"${ACCESS_TOKEN}",` })).status, 400);
    assert.equal((await call('bad json api-chat', '/api/chat', { method: 'POST', body: `{"prompt":"${ADMIN_TOKEN}",` })).status, 200);
    assert.equal((await call('bad field', '/api/chat', { method: 'POST', body: JSON.stringify({ prompt: 'Hi', temperature: ACCESS_TOKEN }) })).status, 200);
    assert.equal((await chat('unknown model', 'no-such-model')).status, 404);
    assert.equal((await chat('model outside the key', 'text-embedding-3-small', {}, CONFIG_APP_KEY)).status, 403);
    assert.equal((await call('unknown route', '/v2/chat/completions')).status, 404);
    assert.equal((await call('too large', '/api/chat', { method: 'POST', body: JSON.stringify({ prompt: 'x'.repeat(2 * 1024 * 1024) }) })).status, 200);
    // `?key=` in the query: never used for auth, never logged.
    for (const path of [`/v1/models?key=${ACCESS_TOKEN}`, `/v1/files?key=${UPSTREAM_SK}&api_key=${ADMIN_TOKEN}`, `/api/chat?key=${ACCESS_TOKEN}`]) {
      await call('query key', path, { token: null, method: path.startsWith('/api') ? 'POST' : 'GET', body: path.startsWith('/api') ? '{"prompt":"Hi"}' : undefined });
      await call('query key with auth', path, { method: path.startsWith('/api') ? 'POST' : 'GET', body: path.startsWith('/api') ? '{"prompt":"Hi"}' : undefined });
    }
    fake.failWith(500, { error: { message: 'internal boom', type: 'server_error', param: null, code: null } }, {}, 2);
    await chat('upstream 500', 'gpt-4o-mini');
    fake.script(() => undefined, 2);
    assert.equal((await chat('upstream timeout', 'gpt-4o-mini')).status, 504);
    fake.script((_request, response, socket) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(`data: ${chatStreamEvents('gpt-4o-mini', 'partial', true)[1]}\n\n`);
      setTimeout(() => socket.destroy(), 20);
    });
    await chat('cut stream', 'gpt-4o-mini', { stream: true });
    assert.ok(logLines() > logged, 'the requests were logged');
    assertNothingLeaked(seen, 28);
  });

  it('admin API: listings, status, usage, reload and refusals', async () => {
    const seen: Seen = [];
    const { admin, chat } = client(seen);
    // Usage to list, from this test's own requests.
    for (const token of [CONFIG_APP_KEY, appKey]) assert.equal((await chat('usage for the listings', 'gpt-4o-mini', {}, token)).status, 200);
    await gateway.gateway.writer.flush();
    for (const [method, path] of [['GET', '/admin/keys'], ['GET', '/admin/keys/from-config'], ['GET', '/admin/keys/made-by-admin'], ['GET', '/admin/status'], ['GET', '/admin/usage?by=key'], ['GET', '/admin/usage?by=model'], ['POST', '/admin/reload']] as const) {
      assert.equal((await admin(`admin ${path}`, method, path)).status, 200, `${method} ${path}`);
    }
    const status = (await (await admin('status json', 'GET', '/admin/status')).json()) as { upstreams: Array<{ keys: Array<{ hint: string }> }> };
    const hints = status.upstreams.flatMap((upstream) => upstream.keys);
    assert.ok(hints.length >= 4 && hints.every((key) => key.hint.length <= 5), 'keys appear as a hint of their last four characters at most');
    for (const token of [ACCESS_TOKEN, UPSTREAM_SK, `${ADMIN_TOKEN}x`]) assert.equal((await admin('admin wrong token', 'GET', '/admin/keys', undefined, token)).status, 401);
    assert.equal((await admin('admin bad body', 'POST', '/admin/keys', { name: 'x', key: ACCESS_TOKEN })).status, 400);
    assert.equal((await admin('admin bad body 2', 'PATCH', '/admin/keys/made-by-admin', { rpm: ADMIN_TOKEN })).status, 400);
    assertNothingLeaked(seen, 15);
  });

  it('no caller-controlled upstream URL: absolute-form targets, Host and forwarding headers, the seed’s chat_proxy', async () => {
    const seen: Seen = [];
    const { call } = client(seen);
    const port = Number(new URL(gateway.url).port);
    const before = fake.requests.length;
    const absolute = await raw(port, `POST http://evil.example/v1/chat/completions HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer ${ACCESS_TOKEN}\r\nX-Forwarded-Host: evil.example\r\nContent-Type: application/json\r\nContent-Length: 37\r\nConnection: close\r\n\r\n{"model":"gpt-4o-mini","messages":[]}`);
    seen.push({ what: 'absolute-form', text: absolute });
    assert.match(absolute, /^HTTP\/1\.1 200 /);
    assert.equal(fake.requests.length, before + 1, 'it went to the configured upstream');
    for (const path of ['/ai/chat_proxy', '/api/chat_proxy']) {
      const response = await call('chat_proxy', path, { method: 'POST', body: JSON.stringify({ url: 'http://127.0.0.1:1/', prompt: 'Hi' }) });
      assert.equal(((await response.json()) as { code: number }).code, 404, 'the seed’s proxy route does not exist (envelope, HTTP 200)');
    }
    assert.equal((await call('body base_url', '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'gpt-4o-mini', messages: [], base_url: 'http://127.0.0.1:1/v1' }) })).status, 200);
    assert.equal(fake.last().path, '/v1/chat/completions');
    assertNothingLeaked(seen, 4);
  });

  it('the CLI (keys list/show --json, usage) against the same database', async () => {
    const seen: Seen = [];
    const { chat } = client(seen);
    // Usage rows for `usage --by key` to show, from this test's own requests.
    for (const token of [CONFIG_APP_KEY, appKey]) assert.equal((await chat('usage for the CLI', 'gpt-4o-mini', {}, token)).status, 200);
    await gateway.gateway.writer.flush();
    // In the gateway's directory: the CLI syncs the keys of the config.json it reads.
    const env = { DATABASE_URL: gateway.config.databaseUrl };
    for (const args of [['keys', 'list'], ['keys', 'list', '--json'], ['keys', 'show', 'made-by-admin', '--json'], ['keys', 'show', 'from-config'], ['usage', '--by', 'key', '--json']]) {
      const result = await runCli(args, { env, cwd: gateway.cwd });
      assert.equal(result.code, 0, result.stderr);
      seen.push({ what: `cli ${args.join(' ')}`, text: `${result.stdout}\n${result.stderr}` });
    }
    const usage = seen.at(-1)!.text;
    assert.ok(usage.includes('made-by-admin') && usage.includes('from-config'), `usage lists both keys: ${usage.slice(0, 400)}`);
    assertNothingLeaked(seen, 7);
  });
});

describe('secrets in start-up errors', () => {
  it('a bad config naming secrets stops start-up with one line that shows none of them', async () => {
    const proxyPassword = 'proxy-password-secret-0123';
    const cases: Array<Record<string, string>> = [
      { ADMIN_TOKEN: 'short-secret' },
      { KEYS: JSON.stringify([{ name: 'a', key: 'short-secret2' }]) },
      { UPSTREAMS: JSON.stringify([{ name: 'x', type: 'azure', base_url: 'https://x.example', api_keys: [UPSTREAM_SK] }]) },
      { UPSTREAMS: JSON.stringify([{ name: 'x', type: 'openai', base_url: 'https://x.example/v1', api_key: UPSTREAM_SK }]) },
      { PROXY: `socks5://user:${proxyPassword}@proxy.example:1080`, APIKEY: UPSTREAM_SK },
      { DATABASE_URL: `mysql://user:${proxyPassword}@db.example/gateway`, ACCESS_TOKEN },
      { ACCESS_TOKEN, HOST: '0.0.0.0', PORT: 'not-a-port' },
    ];
    const results = await Promise.all(cases.map((env) => runCli(['serve'], { env, cwd: tempConfigDir() })));
    for (const [index, env] of cases.entries()) {
      const result = results[index]!;
      assert.equal(result.code, 1, `${JSON.stringify(env)} → ${result.stderr}`);
      assert.match(result.stderr, /^config error: [^\n]*\n$/);
      for (const secret of [UPSTREAM_SK, ACCESS_TOKEN, proxyPassword, 'short-secret', 'short-secret2']) assert.ok(!result.stderr.includes(secret) && !result.stdout.includes(secret), `${result.stderr}`);
    }
  });
});

/** This machine's own non-loopback IPv4 address, if it has one: what a port answers there shows what it is bound to. */
const external = Object.values(networkInterfaces()).flat().find((address) => address && address.family === 'IPv4' && !address.internal)?.address;

describe('the admin API', () => {
  it('is off without admin_token, and binds to 127.0.0.1 by default even when the gateway listens on every address', async () => {
    const off = await spawnGateway({ env: { ACCESS_TOKEN, DATABASE_URL: 'sqlite::memory:' } });
    try {
      assert.match(off.stdout(), /"admin_url":null/);
    } finally {
      off.child.kill('SIGKILL');
    }
    const on = await spawnGateway({ env: { ACCESS_TOKEN, ADMIN_TOKEN, ADMIN_PORT: '0', HOST: '0.0.0.0', DATABASE_URL: 'sqlite::memory:' } });
    try {
      const adminUrl = /"admin_url":"(http:\/\/[^"]+)"/.exec(on.stdout())?.[1];
      assert.match(adminUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
      const response = await fetch(`${adminUrl}/admin/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(response.status, 200);
      assert.ok(!on.stdout().includes(ADMIN_TOKEN) && !on.stdout().includes(ACCESS_TOKEN));
    } finally {
      on.child.kill('SIGKILL');
    }
    const elsewhere = await startTestGateway({ ACCESS_TOKEN, ADMIN_TOKEN, ADMIN_HOST: '0.0.0.0' });
    try {
      assert.equal(elsewhere.config.admin.host, '0.0.0.0', 'admin_host moves it on purpose');
    } finally {
      await elsewhere.close();
    }
  });

  it('from the machine’s own non-loopback address, the public port answers and the admin port is not there', { skip: external === undefined ? 'this machine has no non-loopback IPv4 address to connect from' : false }, async () => {
    const on = await spawnGateway({ env: { ACCESS_TOKEN, ADMIN_TOKEN, ADMIN_PORT: '0', HOST: '0.0.0.0', DATABASE_URL: 'sqlite::memory:' } });
    try {
      const adminUrl = /"admin_url":"(http:\/\/[^"]+)"/.exec(on.stdout())?.[1];
      assert.match(adminUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await fetch(`http://${external}:${new URL(on.url).port}/healthz`)).status, 200);
      await assert.rejects(fetch(`http://${external}:${new URL(adminUrl!).port}/admin/status`), 'the admin port is loopback only');
    } finally {
      on.child.kill('SIGKILL');
    }
  });
});

describe('an upstream key echoed in a mid-stream error event', () => {
  it('is blanked even when the upstream splits the key across two writes; model output is relayed as generated', async () => {
    const key = 'sk-proj-SplitAcrossChunks0123456789abcdef';
    const fake = await FakeUpstream.start();
    const gateway = await startTestGateway({ ACCESS_TOKEN }, { upstreams: [{ name: 'splitting', type: 'openai', base_url: fake.url, api_keys: [key], models: ['gpt-4o-mini'] }] });
    try {
      // Model output that happens to contain the key text is not scanned (SseTapOptions.secrets says why).
      const delta = `data: ${JSON.stringify({ id: 'chatcmpl-split', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: `you typed ${key}` }, finish_reason: null }] })}\n\n`;
      const error = `data: ${JSON.stringify({ error: { message: `key ${key} was revoked`, type: 'invalid_request_error', param: null, code: 'revoked' } })}\n\n`;
      const cut = error.indexOf(key) + 12;
      fake.script(async (_request, response) => {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.write(delta + error.slice(0, cut));
        await new Promise((resolve) => setTimeout(resolve, 50));
        response.end(error.slice(cut));
      });
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACCESS_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } }),
      });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), delta + error.replace(key, '[redacted]'));
      await gateway.gateway.writer.flush();
      assert.ok(!gateway.logText().includes(key), 'no log line shows the key');
    } finally {
      await gateway.close();
      await fake.close();
    }
  });
});
