import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const TOKEN = 'cors-token';

describe('CORS with a list of origins', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  before(async () => {
    upstream = await FakeUpstream.start();
    gateway = await startTestGateway({ BASE_URL: upstream.url, ACCESS_TOKEN: TOKEN, ALLOW_ORIGIN: 'https://a.example, https://b.example' });
  });
  beforeEach(() => upstream.reset());
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  it('echoes a listed origin with Vary: Origin and never credentials', async () => {
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { origin: 'https://b.example', authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"prompt":"hi"}' });
    assert.equal(response.headers.get('access-control-allow-origin'), 'https://b.example');
    assert.match(response.headers.get('vary') ?? '', /Origin/);
    assert.equal(response.headers.get('access-control-allow-credentials'), null);
    assert.match(response.headers.get('access-control-expose-headers') ?? '', /x-request-id/);
  });

  it('gives an unlisted origin no CORS headers', async () => {
    const response = await fetch(`${gateway.url}/healthz`, { headers: { origin: 'https://evil.example' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('access-control-allow-origin'), null);
  });

  it('answers a preflight from a listed origin with 204 and no auth', async () => {
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'OPTIONS', headers: { origin: 'https://a.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), 'https://a.example');
    assert.match(response.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.match(response.headers.get('access-control-allow-headers') ?? '', /Content-Type/);
    assert.match(response.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.equal(upstream.requests.length, 0);
  });

  it('answers a preflight from an unlisted origin with 204 and no CORS headers', async () => {
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), null);
    assert.equal(response.headers.get('access-control-allow-methods'), null);
  });

  it('ignores a malformed requested-header list', async () => {
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'OPTIONS', headers: { origin: 'https://a.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-a, (bad)' } });
    assert.equal(response.headers.get('access-control-allow-headers'), 'Authorization, Content-Type');
  });
});

describe('CORS with *', () => {
  let gateway: TestGateway;
  before(async () => {
    gateway = await startTestGateway({ ACCESS_TOKEN: TOKEN });
  });
  after(() => gateway.close());

  it('sends * without credentials', async () => {
    const response = await fetch(`${gateway.url}/healthz`, { headers: { origin: 'https://anything.example' } });
    assert.equal(response.headers.get('access-control-allow-origin'), '*');
    assert.equal(response.headers.get('access-control-allow-credentials'), null);
  });

  it('sends no CORS headers to a request without Origin', async () => {
    const response = await fetch(`${gateway.url}/healthz`);
    assert.equal(response.headers.get('access-control-allow-origin'), null);
  });
});

describe('health and unknown routes', () => {
  let gateway: TestGateway;
  before(async () => {
    gateway = await startTestGateway({ ACCESS_TOKEN: TOKEN });
  });
  after(() => gateway.close());

  it('GET /healthz answers 200 {"status":"ok"} without auth', async () => {
    const response = await fetch(`${gateway.url}/healthz`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: 'ok' });
  });

  it('keeps a sane caller request id and replaces an unsafe one', async () => {
    const kept = await fetch(`${gateway.url}/healthz`, { headers: { 'x-request-id': 'trace-123.abc' } });
    assert.equal(kept.headers.get('x-request-id'), 'trace-123.abc');
    const replaced = await fetch(`${gateway.url}/healthz`, { headers: { 'x-request-id': 'bad id with spaces' } });
    // A per-process random prefix (11 base64url characters) and a base36 counter (http/request-id.ts).
    assert.match(replaced.headers.get('x-request-id') ?? '', /^req_[A-Za-z0-9_-]{11}[0-9a-z]+$/);
  });

  it('an unknown route is 404 in OpenAI shape, and in the envelope under /api', async () => {
    const response = await fetch(`${gateway.url}/nope?key=secret`);
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { error: { message: 'No route for GET /nope.', type: 'invalid_request_error', param: null, code: 'not_found' } });
    const envelope = await fetch(`${gateway.url}/api/nothing`);
    assert.equal(envelope.status, 200);
    assert.deepEqual(await envelope.json(), { code: 404, data: null, msg: 'No route for GET /api/nothing.' });
    assert.ok(!gateway.logText().includes('secret'));
  });
});

describe('no access token configured', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  before(async () => {
    upstream = await FakeUpstream.start();
    gateway = await startTestGateway({ BASE_URL: upstream.url });
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  it('lets any caller in on loopback, as the seed did', async () => {
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"hi"}' });
    assert.equal(((await response.json()) as { code: number }).code, 200);
  });
});
