import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { chatStreamEvents, FakeUpstream, openAiError, sendSse } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ADMIN = 'metrics-admin-token-0123456789';
const METRICS = 'metrics-scrape-token-0123456789';
const ACCESS = 'metrics-access-token-0123456789';
const UPSTREAM_KEYS = ['sk-metrics-upstream-key-one-00000', 'sk-metrics-upstream-key-two-00000'];
const SECRETS = { alice: 'oa-metrics-alice-000000000000000001', limited: 'oa-metrics-limited-0000000000000002', retrier: 'oa-metrics-retrier-0000000000000003', streamer: 'oa-metrics-streamer-000000000000004', leaver: 'oa-metrics-leaver-00000000000000005' };
const CHAT = 'POST /v1/chat/completions';

/** One sample of the exposition: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format 0.0.4, the samples only (label values here never hold `"` or `\`). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[name!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels are exactly `labels` (0 when there is none). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((sample) => sample.name === name && Object.keys(sample.labels).length === Object.keys(labels).length && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  assert.ok(found.length <= 1, `one series ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}

/** `token` null: no Authorization header. */
async function scrape(url: string, token: string | null = ADMIN): Promise<{ status: number; text: string; contentType: string | null }> {
  const response = await fetch(`${url}/metrics`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: response.status, text: await response.text(), contentType: response.headers.get('content-type') };
}

async function samplesOf(gateway: TestGateway): Promise<Sample[]> {
  const { status, text } = await scrape(gateway.adminUrl!);
  assert.equal(status, 200, text);
  return parseExposition(text);
}

function chat(gateway: TestGateway, key: string, body: Record<string, unknown> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], ...body }),
    signal,
  });
}

/** Polls until `check` holds (finishing a request the client left is asynchronous). */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The request's overhead header, checked against its log line: the same figure, and at most its total time. */
function assertOverhead(gateway: TestGateway, response: Response, what: string): number {
  const header = response.headers.get('x-openai-api-overhead-ms');
  assert.ok(header !== null, `${what}: the overhead header is present`);
  const overhead = Number(header);
  assert.ok(Number.isFinite(overhead) && overhead >= 0, `${what}: a number of milliseconds (${header})`);
  const line = gateway.logs.find((entry) => entry.reqId === response.headers.get('x-request-id') && entry.msg === 'request');
  assert.ok(line, `${what}: its log line`);
  assert.equal(line.overhead_ms, overhead, `${what}: the log line carries the same figure`);
  assert.ok(overhead <= (line.latency_ms as number), `${what}: overhead ${overhead} ≤ total ${String(line.latency_ms)}`);
  return overhead;
}

describe('GET /metrics', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;

  before(async () => {
    upstream = await FakeUpstream.start();
    gateway = await startTestGateway(
      { BASE_URL: upstream.url, APIKEY: UPSTREAM_KEYS.join('|'), ACCESS_TOKEN: ACCESS, ADMIN_TOKEN: ADMIN, METRICS_TOKEN: METRICS, MAX_ATTEMPTS: '2', RETRY_BASE_DELAY: '0', COOLDOWN: '0.05', SSE_KEEPALIVE: '0.2' },
      {
        keys: [
          { name: 'alice', key: SECRETS.alice, models: ['gpt-4o-mini'] },
          { name: 'limited', key: SECRETS.limited, rpm: 1 },
          { name: 'retrier', key: SECRETS.retrier },
          { name: 'streamer', key: SECRETS.streamer },
          { name: 'leaver', key: SECRETS.leaver },
        ],
      },
    );
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  it('counts a known mix of requests exactly: success, 429, 403, a retried 500, a stream, an abort', async () => {
    const ok = await chat(gateway, SECRETS.alice);
    assert.equal(ok.status, 200);
    await ok.text();
    const refused = await chat(gateway, SECRETS.alice, { model: 'gpt-4o' });
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'model_not_allowed');
    assert.equal((await (await chat(gateway, SECRETS.limited)).text()).length > 0, true);
    const limited = await chat(gateway, SECRETS.limited);
    assert.equal(limited.status, 429);
    await limited.text();

    upstream.failWith(500, openAiError(500, 'The server had an error', 'server_error', null));
    const retried = await chat(gateway, SECRETS.retrier);
    assert.equal(retried.status, 200);
    assert.equal(retried.headers.get('x-openai-api-attempts'), '2');
    await retried.text();

    const streamed = await chat(gateway, SECRETS.streamer, { stream: true });
    assert.equal(streamed.status, 200);
    assert.match(await streamed.text(), /\[DONE\]/);

    upstream.script((_request, response) => sendSse(response, chatStreamEvents('gpt-4o-mini', 'one two three four five six seven eight', true), { delayMs: 300 }));
    const controller = new AbortController();
    const leaving = await chat(gateway, SECRETS.leaver, { stream: true }, controller.signal);
    const reader = leaving.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.cancel().catch(() => undefined);
    await eventually(async () => valueOf(await samplesOf(gateway), 'openai_api_requests_total', { route: CHAT, kind: 'chat', status_class: '4xx', model: 'gpt-4o-mini', key: 'leaver', upstream: 'default' }) === 1, 'the abort to be finished');

    const samples = await samplesOf(gateway);
    const requests = (status_class: string, model: string, key: string, upstreamName: string): number => valueOf(samples, 'openai_api_requests_total', { route: CHAT, kind: 'chat', status_class, model, key, upstream: upstreamName });
    assert.deepEqual(
      {
        alice: requests('2xx', 'gpt-4o-mini', 'alice', 'default'),
        aliceRefused: requests('4xx', 'gpt-4o', 'alice', 'none'),
        limited: requests('2xx', 'gpt-4o-mini', 'limited', 'default'),
        limitedRefused: requests('4xx', 'gpt-4o-mini', 'limited', 'none'),
        retrier: requests('2xx', 'gpt-4o-mini', 'retrier', 'default'),
        streamer: requests('2xx', 'gpt-4o-mini', 'streamer', 'default'),
        leaver: requests('4xx', 'gpt-4o-mini', 'leaver', 'default'),
      },
      { alice: 1, aliceRefused: 1, limited: 1, limitedRefused: 1, retrier: 1, streamer: 1, leaver: 1 },
    );
    const chatSeries = samples.filter((sample) => sample.name === 'openai_api_requests_total' && sample.labels.route === CHAT);
    assert.equal(chatSeries.reduce((sum, sample) => sum + sample.value, 0), 7, 'no other chat request was counted');

    assert.equal(valueOf(samples, 'openai_api_request_duration_seconds_count', { route: CHAT, status_class: '2xx', model: 'gpt-4o-mini' }), 4);
    assert.equal(valueOf(samples, 'openai_api_request_duration_seconds_count', { route: CHAT, status_class: '4xx', model: 'gpt-4o-mini' }), 2);
    assert.equal(valueOf(samples, 'openai_api_request_duration_seconds_count', { route: CHAT, status_class: '4xx', model: 'gpt-4o' }), 1);
    assert.equal(valueOf(samples, 'openai_api_request_duration_seconds_bucket', { route: CHAT, status_class: '2xx', model: 'gpt-4o-mini', le: '+Inf' }), 4);
    assert.equal(valueOf(samples, 'openai_api_gateway_overhead_seconds_count', { route: CHAT, status_class: '2xx' }), 4);
    assert.equal(valueOf(samples, 'openai_api_gateway_overhead_seconds_count', { route: CHAT, status_class: '4xx' }), 3);
    assert.equal(valueOf(samples, 'openai_api_upstream_duration_seconds_count', { upstream: 'default', model: 'gpt-4o-mini' }), 5, 'every request that went upstream');
    assert.equal(valueOf(samples, 'openai_api_time_to_first_byte_seconds_count', { route: CHAT, model: 'gpt-4o-mini', upstream: 'default' }), 5, 'every answer that reached the client');

    assert.equal(valueOf(samples, 'openai_api_upstream_retries_total', { upstream: 'default' }), 1);
    assert.equal(valueOf(samples, 'openai_api_upstream_attempts_total', { upstream: 'default' }), 6, 'five requests upstream, one of them twice');
    assert.equal(valueOf(samples, 'openai_api_upstream_attempt_failures_total', { upstream: 'default' }), 1);
    assert.equal(valueOf(samples, 'openai_api_limit_rejections_total', { reason: 'rate_limit_exceeded', key: 'limited' }), 1);
    assert.equal(valueOf(samples, 'openai_api_limit_rejections_total', { reason: 'model_not_allowed', key: 'alice' }), 1);
    assert.equal(valueOf(samples, 'openai_api_errors_total', { code: 'rate_limit_exceeded' }), 1);
    assert.equal(valueOf(samples, 'openai_api_errors_total', { code: 'model_not_allowed' }), 1);

    for (const key of ['alice', 'limited', 'retrier', 'streamer']) {
      assert.equal(valueOf(samples, 'openai_api_tokens_total', { key, model: 'gpt-4o-mini', type: 'input' }), 12, `${key} input tokens`);
      assert.equal(valueOf(samples, 'openai_api_tokens_total', { key, model: 'gpt-4o-mini', type: 'output' }), 5, `${key} output tokens`);
      assert.equal(valueOf(samples, 'openai_api_tokens_total', { key, model: 'gpt-4o-mini', type: 'cached' }), 0);
      assert.equal(valueOf(samples, 'openai_api_tokens_total', { key, model: 'gpt-4o-mini', type: 'reasoning' }), 0);
    }
    await gateway.gateway.writer.flush();
    const rows = await gateway.gateway.database.db.selectFrom('usage_records').select(['key_name', 'cost_usd']).execute();
    for (const key of ['alice', 'streamer', 'leaver']) {
      const stored = rows.filter((row) => row.key_name === key).reduce((sum, row) => sum + Number(row.cost_usd ?? 0), 0);
      assert.ok(Math.abs(valueOf(samples, 'openai_api_cost_usd_total', { key, model: 'gpt-4o-mini' }) - stored) < 1e-12, `${key}: the cost metered equals the usage records'`);
    }

    assert.equal(valueOf(samples, 'openai_api_requests_in_flight'), 0);
    assert.equal(valueOf(samples, 'openai_api_open_streams', { type: 'http' }), 0);
    assert.equal(valueOf(samples, 'openai_api_open_streams', { type: 'websocket' }), 0);
    assert.equal(valueOf(samples, 'openai_api_database_up'), 1);
    assert.equal(valueOf(samples, 'openai_api_app_keys'), 5);
    assert.equal(valueOf(samples, 'openai_api_upstream_circuit_state', { upstream: 'default', state: 'closed' }), 1);
    assert.equal(valueOf(samples, 'openai_api_upstream_circuit_state', { upstream: 'default', state: 'open' }), 0);
    assert.equal(valueOf(samples, 'openai_api_upstream_keys', { upstream: 'default', status: 'healthy' }) + valueOf(samples, 'openai_api_upstream_keys', { upstream: 'default', status: 'cooling' }), 2);
    assert.ok(valueOf(samples, 'openai_api_usage_flush_duration_seconds_count') >= 1, 'usage flushes are timed');
    assert.ok(valueOf(samples, 'openai_api_usage_records_written_total') >= 7);
    assert.equal(valueOf(samples, 'openai_api_usage_flush_failures_total'), 0);
    assert.ok(samples.some((sample) => sample.name === 'process_cpu_user_seconds_total'), 'default process metrics');
    assert.ok(samples.some((sample) => sample.name === 'nodejs_eventloop_lag_seconds'), 'default Node.js metrics');
  });

  it('puts x-openai-api-overhead-ms on JSON, streamed, error and /api/chat answers, the same figure as the log line and at most the total', async () => {
    const json = await chat(gateway, ACCESS);
    await json.text();
    assertOverhead(gateway, json, 'JSON');
    const streamed = await chat(gateway, ACCESS, { stream: true });
    await streamed.text();
    assertOverhead(gateway, streamed, 'stream');
    const unauthorized = await chat(gateway, 'not-a-key-not-a-key');
    assert.equal(unauthorized.status, 401);
    await unauthorized.text();
    assertOverhead(gateway, unauthorized, '401');
    const upstreamError = await (upstream.failWith(400, openAiError(400, 'bad', 'invalid_request_error', null)), chat(gateway, ACCESS));
    assert.equal(upstreamError.status, 400);
    await upstreamError.text();
    assertOverhead(gateway, upstreamError, 'upstream error');
    for (const stream of [false, true]) {
      const apiChat = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${ACCESS}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Hello?', stream }) });
      assert.equal(apiChat.status, 200);
      await apiChat.text();
      assertOverhead(gateway, apiChat, `/api/chat${stream ? ' streamed' : ''}`);
    }
    const notFound = await fetch(`${gateway.url}/nothing-here`);
    await notFound.text();
    assertOverhead(gateway, notFound, '404');
  });

  it('excludes the wait for a slow upstream from the overhead', async () => {
    upstream.script(async (request, response) => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ id: 'chatcmpl-slow', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
      void request;
    });
    const slow = await chat(gateway, ACCESS);
    await slow.text();
    const overhead = assertOverhead(gateway, slow, 'slow upstream');
    assert.ok(overhead < 250, `the 300 ms upstream wait is not overhead (${overhead} ms)`);
  });

  it('counts only the time before the send as overhead when a stream is committed before a slow upstream answers', async () => {
    upstream.script(async (_request, response) => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await sendSse(response, chatStreamEvents('gpt-4o-mini', 'late answer', true));
    });
    const early = await chat(gateway, ACCESS, { stream: true });
    assert.match(await early.text(), /: keep-alive[\s\S]*\[DONE\]/, 'committed early with keep-alive comments, then the answer');
    const overhead = assertOverhead(gateway, early, 'early stream');
    assert.ok(overhead < 150, `the head went out at ~200 ms while the upstream was still thinking; overhead ${overhead} ms`);
  });

  it('keeps the series bounded under 10,000 random model names', async () => {
    const before = parseExposition((await scrape(gateway.adminUrl!)).text);
    const series = (samples: Sample[]): number => samples.filter((sample) => sample.name === 'openai_api_requests_total').length;
    const names: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 10_000) {
        const model = `random-${randomBytes(8).toString('hex')}`;
        next++;
        names.push(model);
        const response = await fetch(`${gateway.url}/v1/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${ACCESS}`, 'content-type': 'application/json' }, body: JSON.stringify({ model, input: 'x' }) });
        assert.equal(response.status, 200);
        await response.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const { text } = await scrape(gateway.adminUrl!);
    const after = parseExposition(text);
    assert.equal(valueOf(after, 'openai_api_requests_total', { route: 'POST /v1/embeddings', kind: 'embeddings', status_class: '2xx', model: 'other', key: 'access_token#1', upstream: 'default' }), 10_000);
    assert.equal(series(after), series(before) + 1, 'one new series: the folded model');
    for (const name of names.slice(0, 50)) assert.ok(!text.includes(name), 'no random model name in the exposition');
    assert.ok(after.length < 2_000, `the whole exposition stays small (${after.length} samples)`);
  });

  it('authorizes scrapes on the admin listener with the admin token or metrics_token, and serves no /metrics on the public port unless metrics_public', async () => {
    assert.equal((await scrape(gateway.adminUrl!, null)).status, 401);
    assert.equal((await scrape(gateway.adminUrl!, 'wrong-token-wrong-token')).status, 401);
    const byAdmin = await scrape(gateway.adminUrl!, ADMIN);
    assert.equal(byAdmin.status, 200);
    assert.match(byAdmin.contentType ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal((await scrape(gateway.adminUrl!, METRICS)).status, 200);
    assert.equal((await scrape(gateway.url, METRICS)).status, 404, 'not on the public port without metrics_public');
    assert.equal((await fetch(`${gateway.adminUrl}/admin/keys`, { headers: { authorization: `Bearer ${METRICS}` } })).status, 401, 'metrics_token opens nothing else');
  });

  it('shows no secret: no upstream key, app key, access token, admin or metrics token', async () => {
    const { text } = await scrape(gateway.adminUrl!);
    for (const secret of [...UPSTREAM_KEYS, ...Object.values(SECRETS), ACCESS, ADMIN, METRICS]) {
      assert.ok(!text.includes(secret), 'a secret in the exposition');
      assert.ok(!text.includes(secret.slice(3, 15)), 'part of a secret in the exposition');
    }
  });
});

describe('GET /metrics on the public port', () => {
  let upstream: FakeUpstream;
  const gateways: TestGateway[] = [];

  before(async () => {
    upstream = await FakeUpstream.start();
  });
  after(async () => {
    await Promise.all(gateways.map((gateway) => gateway.close()));
    await upstream.close();
  });
  const start = async (env: Record<string, string>): Promise<TestGateway> => {
    const gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: UPSTREAM_KEYS[0]!, ACCESS_TOKEN: ACCESS, ...env });
    gateways.push(gateway);
    return gateway;
  };

  it('with metrics_public and metrics_token: the metrics token only (not the admin token)', async () => {
    const gateway = await start({ METRICS_PUBLIC: 'true', METRICS_TOKEN: METRICS, ADMIN_TOKEN: ADMIN });
    assert.equal((await scrape(gateway.url, null)).status, 401);
    assert.equal((await scrape(gateway.url, ADMIN)).status, 401);
    assert.equal((await scrape(gateway.url, ACCESS)).status, 401);
    const scraped = await scrape(gateway.url, METRICS);
    assert.equal(scraped.status, 200);
    assert.match(scraped.text, /^# HELP /m);
  });

  it('with metrics_public and no metrics_token: open, for scrapers inside a private network', async () => {
    const gateway = await start({ METRICS_PUBLIC: 'true' });
    assert.equal(gateway.adminUrl, undefined, 'no admin listener');
    assert.equal((await scrape(gateway.url, null)).status, 200);
  });

  it('metrics_token alone starts the admin listener for /metrics only', async () => {
    const gateway = await start({ METRICS_TOKEN: METRICS });
    assert.ok(gateway.adminUrl);
    assert.equal((await scrape(gateway.adminUrl, METRICS)).status, 200);
    assert.equal((await scrape(gateway.adminUrl, null)).status, 401);
    assert.equal((await fetch(`${gateway.adminUrl}/admin/keys`, { headers: { authorization: `Bearer ${METRICS}` } })).status, 404, 'no admin API without admin_token');
  });
});
