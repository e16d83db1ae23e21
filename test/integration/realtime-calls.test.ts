import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { FAKE_SDP_ANSWER, FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ADMIN = 'admin-token-realtime-calls-0123456789';
const ACCESS = 'owner-access-token-realtime-calls';
const UPSTREAM_KEY = 'sk-upstream-realtime-calls-0123456789';
const OFFER = 'v=0\r\no=- 7614219274584779017 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n';
const SESSION = { type: 'realtime', model: 'gpt-realtime', instructions: 'You are terse.', audio: { output: { voice: 'marin' } } };

interface Answer {
  status: number;
  json: Record<string, unknown> | undefined;
  text: string;
  headers: Headers;
}

async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text, headers: response.headers };
}

const codeOf = (answer: Answer): string | undefined => (answer.json?.error as { code?: string } | undefined)?.code;

/** The form as a browser builds it (`FormData` with string fields). */
function form(fields: Array<[string, string]>): FormData {
  const data = new FormData();
  for (const [name, value] of fields) data.append(name, value);
  return data;
}

/** A hand-written form, for what FormData cannot express. */
function rawForm(parts: string[]): { body: string; contentType: string } {
  const boundary = 'call-b0undary';
  return { body: parts.map((part) => `--${boundary}\r\n${part}\r\n`).join('') + `--${boundary}--\r\n`, contentType: `multipart/form-data; boundary=${boundary}` };
}

const field = (name: string, value: string, headers = ''): string => `Content-Disposition: form-data; name="${name}"\r\n${headers}\r\n${value}`;

/**
 * `POST /v1/realtime/calls`, the Realtime WebRTC SDP exchange, through the same admission as
 * `POST /v1/realtime/client_secrets` (issue 12): the form's `session.model` is held to an app
 * key's model list and the upstream reads exactly the session checked; the SDP answer and the
 * call's Location come back as the upstream sent them.
 */
describe('Realtime WebRTC calls', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  const keys: Record<string, string> = {};

  const call = async (key: string, body: string | FormData | Uint8Array, headers: Record<string, string> = {}): Promise<Answer> =>
    answerOf(await fetch(`${gateway.url}/v1/realtime/calls`, { method: 'POST', headers: { authorization: `Bearer ${key}`, ...headers }, body }));
  const sdk = (key: string): OpenAI => new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
  const assertRefused = (answer: Answer, status: number, code: string, message?: RegExp, label = ''): void => {
    assert.equal(answer.status, status, `${label} ${answer.text}`);
    assert.equal(codeOf(answer), code, `${label} ${answer.text}`);
    if (message) assert.match((answer.json!.error as { message: string }).message, message, label);
    assert.equal(upstream.requests.length, 0, `${label}: nothing reached the upstream`);
  };

  before(async () => {
    upstream = await FakeUpstream.start();
    gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: UPSTREAM_KEY, ACCESS_TOKEN: ACCESS, ADMIN_TOKEN: ADMIN, MAX_ATTEMPTS: '1', MODEL_ALIAS: '{"rt": "gpt-realtime"}' });
    const create = async (attributes: Record<string, unknown>): Promise<string> => {
      const response = await fetch(`${gateway.adminUrl}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(attributes) });
      const created = await answerOf(response);
      assert.equal(created.status, 201, created.text);
      return created.json!.key as string;
    };
    keys.realtime = await create({ name: 'realtime', models: ['gpt-realtime'] });
    keys.open = await create({ name: 'open' });
    keys.budget = await create({ name: 'budget', budget_usd: 5, models: ['gpt-realtime'] });
    keys.granted = await create({ name: 'granted', budget_usd: 5, models: ['gpt-realtime'], endpoints: ['POST /v1/realtime/calls'] });
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });
  beforeEach(() => upstream.reset());

  it('creates a call for a key with a model list through the SDK: 201, the SDP answer and the Location relayed', async () => {
    const response = await sdk(keys.realtime!).realtime.calls.create({ sdp: OFFER, session: SESSION as OpenAI.Realtime.RealtimeSessionCreateRequest });
    assert.equal(response.status, 201);
    assert.equal(response.headers.get('content-type'), 'application/sdp');
    assert.equal(await response.text(), FAKE_SDP_ANSWER);
    const [made] = upstream.calls;
    assert.ok(made);
    assert.match(made.location, /^\/v1\/realtime\/calls\/rtc_[0-9a-f]+$/);
    assert.equal(response.headers.get('location'), made.location, 'the Location reaches the client as the upstream sent it');

    const sent = upstream.last();
    assert.equal(sent.headers.authorization, `Bearer ${UPSTREAM_KEY}`, 'the upstream got the server key');
    assert.equal(made.sdp, OFFER);
    assert.deepEqual(made.session, SESSION);
    assert.deepEqual(made.fields, ['sdp', 'session']);
    assert.match(made.contentType, /^multipart\/form-data; boundary=openai-api-/, 'the form the gateway re-encoded from what it checked');
    assert.equal(Number(sent.headers['content-length']), sent.body.length);
  });

  it('refuses another session.model, and a form without one, before anything reaches the upstream', async () => {
    assertRefused(await call(keys.realtime!, form([['sdp', OFFER], ['session', JSON.stringify({ ...SESSION, model: 'gpt-realtime-mini' })]])), 403, 'model_not_allowed');
    assertRefused(await call(keys.realtime!, form([['sdp', OFFER]])), 400, 'invalid_request', /multipart\/form-data .*"sdp".*"model".*"session"/);
    assertRefused(await call(keys.realtime!, form([['sdp', OFFER], ['session', JSON.stringify({ type: 'realtime' })]])), 400, 'invalid_request', /may use only some models/);
    assertRefused(await call(keys.realtime!, form([['sdp', OFFER], ['session', JSON.stringify({ model: 7 })]])), 400, 'invalid_request', /"session\.model" must be a string/);
  });

  it('forwards only sdp and session to a restricted key\'s upstream: a smuggled "model" field stays behind', async () => {
    const answer = await call(keys.realtime!, form([['model', 'gpt-4o'], ['sdp', OFFER], ['session', JSON.stringify(SESSION)], ['model', 'gpt-4o']]));
    assert.equal(answer.status, 201, answer.text);
    assert.deepEqual(upstream.calls[0]!.fields, ['sdp', 'session']);
    assert.doesNotMatch(upstream.last().body.toString('utf8'), /gpt-4o/);
  });

  it('refuses a form the upstream could read otherwise than the gateway did', async () => {
    const session = field('session', JSON.stringify(SESSION));
    const cases: Array<[string, string[], RegExp]> = [
      ['a second session', [field('sdp', OFFER), field('session', JSON.stringify({ ...SESSION, model: 'gpt-realtime-mini' })), session], /"session" field appears more than once/],
      ['a second sdp', [field('sdp', OFFER), session, field('sdp', OFFER)], /"sdp" field appears more than once/],
      ['session as a file', [field('sdp', OFFER), `Content-Disposition: form-data; name="session"; filename="s.json"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(SESSION)}`], /"session" field is a file part/],
      ['an encoded session', [field('sdp', OFFER), field('session', Buffer.from(JSON.stringify(SESSION)).toString('base64'), 'Content-Transfer-Encoding: base64\r\n')], /Content-Transfer-Encoding "base64"/],
      ['no sdp', [session], /no "sdp" field/],
    ];
    for (const [name, parts, message] of cases) {
      const { body, contentType } = rawForm(parts);
      for (const key of [keys.realtime!, ACCESS]) assertRefused(await call(key, body, { 'content-type': contentType }), 400, 'invalid_request', message, name);
    }
    assertRefused(await call(keys.realtime!, form([['sdp', OFFER], ['session', '{"model": "gpt-realtime"']])), 400, 'invalid_json', /"session" field is not valid JSON/);
    assertRefused(await call(keys.realtime!, form([['sdp', OFFER], ['session', '["gpt-realtime"]']])), 400, 'invalid_request', /must be a JSON object/);
  });

  it('refuses a raw application/sdp offer to a key with a model list, naming what to send, and relays it for an access token', async () => {
    assertRefused(await call(keys.realtime!, OFFER, { 'content-type': 'application/sdp' }), 400, 'invalid_request', /multipart\/form-data/);

    const answer = await call(ACCESS, OFFER, { 'content-type': 'application/sdp' });
    assert.equal(answer.status, 201, answer.text);
    assert.equal(answer.text, FAKE_SDP_ANSWER);
    assert.equal(answer.headers.get('location'), upstream.calls[0]!.location);
    assert.equal(upstream.last().headers['content-type'], 'application/sdp');
    assert.equal(upstream.last().body.toString('utf8'), OFFER, 'the raw offer, unchanged');

    // The SDK sends a bare offer raw, too: fine for a key without a model list.
    const bare = await sdk(keys.open!).realtime.calls.create({ sdp: OFFER });
    assert.equal(bare.status, 201);
    assert.equal(upstream.calls[1]!.sdp, OFFER);
  });

  it('forwards an unrestricted caller\'s form byte for byte', async () => {
    const { body, contentType } = rawForm([field('sdp', OFFER), field('session', JSON.stringify(SESSION)), field('future_field', 'x')]);
    const answer = await call(keys.open!, body, { 'content-type': contentType });
    assert.equal(answer.status, 201, answer.text);
    assert.equal(upstream.last().body.toString('utf8'), body);
    assert.equal(upstream.last().headers['content-type'], contentType);
  });

  it('resolves a model alias in session.model and sends the resolved name', async () => {
    const answer = await call(keys.realtime!, form([['sdp', OFFER], ['session', JSON.stringify({ ...SESSION, model: 'rt' })]]));
    assert.equal(answer.status, 201, answer.text);
    assert.deepEqual(upstream.calls[0]!.session, SESSION);
  });

  it('refuses other content types, naming the accepted ones', async () => {
    assertRefused(await call(ACCESS, JSON.stringify({ sdp: OFFER, session: SESSION }), { 'content-type': 'application/json' }), 400, 'invalid_content_type', /multipart\/form-data .* or application\/sdp/);
    assertRefused(await call(keys.realtime!, OFFER, { 'content-type': 'text/plain' }), 400, 'invalid_content_type');
  });

  it('refuses a form larger than 1 MiB', async () => {
    const answer = await call(ACCESS, form([['sdp', OFFER], ['session', JSON.stringify({ ...SESSION, instructions: 'x'.repeat(1024 * 1024) })]]));
    assertRefused(answer, 413, 'body_too_large');
  });

  it('refuses the endpoint to a key with a budget (the call spends where the gateway cannot meter) unless granted', async () => {
    assertRefused(await call(keys.budget!, form([['sdp', OFFER], ['session', JSON.stringify(SESSION)]])), 403, 'endpoint_not_allowed', /budget/);

    const granted = await call(keys.granted!, form([['sdp', OFFER], ['session', JSON.stringify(SESSION)]]));
    assert.equal(granted.status, 201, granted.text);
    // Granted, a model read is still checked, but none is required: a raw offer passes.
    upstream.reset();
    assertRefused(await call(keys.granted!, form([['sdp', OFFER], ['session', JSON.stringify({ ...SESSION, model: 'gpt-4o' })]])), 403, 'model_not_allowed');
    const raw = await call(keys.granted!, OFFER, { 'content-type': 'application/sdp' });
    assert.equal(raw.status, 201, raw.text);
  });

  it('relays an upstream refusal as the upstream sent it', async () => {
    upstream.failWith(400, { error: { message: 'Invalid SDP offer.', type: 'invalid_request_error', param: 'sdp', code: 'invalid_offer' } });
    const answer = await call(keys.realtime!, form([['sdp', OFFER], ['session', JSON.stringify(SESSION)]]));
    assert.equal(answer.status, 400);
    assert.equal(codeOf(answer), 'invalid_offer');
  });
});
