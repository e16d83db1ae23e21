import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FakeUpstream, openAiError, sendSse } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const TOKEN = 'test-access-token-1';
const UPSTREAM_KEYS = ['sk-upstream-key-aaaaaaaa', 'sk-upstream-key-bbbbbbbb'];

async function chat(gateway: TestGateway, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${gateway.url}/api/chat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown>, headers: response.headers };
}

describe('/api/chat', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;

  before(async () => {
    upstream = await FakeUpstream.start();
    gateway = await startTestGateway(
      { BASE_URL: upstream.url, APIKEY: UPSTREAM_KEYS.join('|'), ACCESS_TOKEN: `${TOKEN},second-token`, FIRST_BYTE_TIMEOUT: '0.5', IDLE_TIMEOUT: '0.5', MAX_ATTEMPTS: '1', COOLDOWN: '0.05' },
      { bot_desc: 'You are a helpful cat.', model: 'gpt-4o-mini', max_tokens: 300, temperature: 0.7, top_p: 0.95, frequency_penalty: 0.1, presence_penalty: 0.6 },
    );
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });
  beforeEach(() => upstream.reset());

  it('answers in the seed envelope with the upstream answer text', async () => {
    const { status, json, headers } = await chat(gateway, { prompt: 'Hello?' });
    assert.equal(status, 200);
    assert.deepEqual(json, { code: 200, data: upstream.replyText, msg: 'success' });
    assert.match(headers.get('x-request-id') ?? '', /^req_/);
  });

  it('is served at /ai/chat too', async () => {
    const response = await fetch(`${gateway.url}/ai/chat`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"prompt":"hi"}' });
    assert.deepEqual(await response.json(), { code: 200, data: upstream.replyText, msg: 'success' });
  });

  it('sends the persona, every configured parameter and the prompt upstream, with the server key', async () => {
    await chat(gateway, { prompt: 'Hello?' });
    const sent = upstream.last();
    assert.equal(sent.path, '/v1/chat/completions');
    assert.deepEqual(sent.json, {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'You are a helpful cat.' },
        { role: 'user', content: 'Hello?' },
      ],
      max_tokens: 300,
      temperature: 0.7,
      top_p: 0.95,
      frequency_penalty: 0.1,
      presence_penalty: 0.6,
    });
    assert.ok(UPSTREAM_KEYS.map((k) => `Bearer ${k}`).includes(sent.headers.authorization ?? ''));
    assert.ok(!JSON.stringify(sent.headers).includes(TOKEN), 'the caller token never goes upstream');
  });

  it('uses the upstream keys in turn', async () => {
    await chat(gateway, { prompt: 'one' });
    await chat(gateway, { prompt: 'two' });
    await chat(gateway, { prompt: 'three' });
    const used = upstream.requests.map((r) => r.headers.authorization);
    assert.notEqual(used[0], used[1]);
    assert.equal(used[0], used[2]);
  });

  it('lets the body override model and sampling parameters per request', async () => {
    await chat(gateway, { prompt: 'Hi', model: 'gpt-4o', max_tokens: 50, temperature: 0, top_p: 0.5, frequency_penalty: -1, presence_penalty: 1 });
    assert.deepEqual(upstream.last().json, {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'You are a helpful cat.' },
        { role: 'user', content: 'Hi' },
      ],
      max_tokens: 50,
      temperature: 0,
      top_p: 0.5,
      frequency_penalty: -1,
      presence_penalty: 1,
    });
  });

  it('accepts a whole chat history in messages, joining the persona to its system message', async () => {
    const messages = [
      { role: 'system', content: 'Answer in French.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Salut' },
      { role: 'user', content: 'How are you?' },
    ];
    await chat(gateway, { messages });
    assert.deepEqual(upstream.last().json?.messages, [{ role: 'system', content: 'You are a helpful cat.\n\nAnswer in French.' }, ...messages.slice(1)]);
  });

  it('sends legacy completion models to /completions with persona and prompt joined by a newline', async () => {
    const { json } = await chat(gateway, { prompt: 'Say hi', model: 'gpt-3.5-turbo-instruct' });
    assert.equal(json.data, upstream.replyText);
    const sent = upstream.last();
    assert.equal(sent.path, '/v1/completions');
    assert.deepEqual(sent.json, { model: 'gpt-3.5-turbo-instruct', prompt: 'You are a helpful cat.\nSay hi', max_tokens: 300, temperature: 0.7, top_p: 0.95, frequency_penalty: 0.1, presence_penalty: 0.6 });
  });

  for (const model of ['o3-mini', 'o1', 'o4-mini', 'gpt-5', 'gpt-5.1-mini']) {
    it(`gives reasoning model ${model} max_completion_tokens and no sampling parameters`, async () => {
      await chat(gateway, { prompt: 'Think', model });
      assert.deepEqual(upstream.last().json, {
        model,
        messages: [
          { role: 'system', content: 'You are a helpful cat.' },
          { role: 'user', content: 'Think' },
        ],
        max_completion_tokens: 300,
      });
    });
  }

  describe('bad input answers the envelope and reaches nothing upstream', () => {
    const cases: Array<{ name: string; body: unknown; headers?: Record<string, string>; code: number; msg: RegExp }> = [
      { name: 'non-JSON body', body: '{"prompt": "hi"', code: 400, msg: /not valid JSON/ },
      { name: 'wrong content type', body: 'prompt=hi', headers: { 'content-type': 'text/plain' }, code: 400, msg: /Content-Type must be application\/json/ },
      { name: 'prompt not a string', body: { prompt: 42 }, code: 400, msg: /prompt: must be a string/ },
      { name: 'empty prompt', body: { prompt: '   ' }, code: 400, msg: /prompt: is empty/ },
      { name: 'no prompt', body: {}, code: 400, msg: /prompt: is required/ },
      { name: 'messages malformed', body: { messages: [{ role: 'wizard', content: 'x' }] }, code: 400, msg: /messages\[0\]\.role: must be one of/ },
      { name: 'messages empty', body: { messages: [] }, code: 400, msg: /messages: must hold at least one message/ },
      { name: 'temperature out of range', body: { prompt: 'x', temperature: 5 }, code: 400, msg: /temperature: must be a number from 0 to 2/ },
      { name: 'JSON array body', body: '[1,2]', code: 400, msg: /Body must be a JSON object/ },
      { name: 'empty body', body: '', code: 400, msg: /empty/ },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const { status, json } = await chat(gateway, c.body, c.headers);
        assert.equal(status, 200);
        assert.equal(json.code, c.code);
        assert.equal(json.data, null);
        assert.match(String(json.msg), c.msg);
        assert.equal(upstream.requests.length, 0);
      });
    }

    it('a body over body_limit gets 413', async () => {
      const { json } = await chat(gateway, { prompt: 'x'.repeat(1024 * 1024 + 10) });
      assert.equal(json.code, 413);
      assert.match(String(json.msg), /larger than the configured limit/);
      assert.equal(upstream.requests.length, 0);
    });
  });

  describe('tokens', () => {
    it('401 without a token', async () => {
      const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"x"}' });
      assert.deepEqual(await response.json(), { code: 401, data: null, msg: 'Missing key: send "Authorization: Bearer <your key>".' });
    });
    it('401 with an unknown token', async () => {
      const { json } = await chat(gateway, { prompt: 'x' }, { authorization: 'Bearer nope' });
      assert.equal(json.code, 401);
      assert.match(String(json.msg), /not known/);
    });
    it('accepts every configured token and a lower-case scheme', async () => {
      assert.equal((await chat(gateway, { prompt: 'x' }, { authorization: 'Bearer second-token' })).json.code, 200);
      assert.equal((await chat(gateway, { prompt: 'x' }, { authorization: `bearer ${TOKEN}` })).json.code, 200);
    });
    it('does not strip "Bearer " inside a token (the seed replaced every occurrence)', async () => {
      const { json } = await chat(gateway, { prompt: 'x' }, { authorization: `Bearer Bearer ${TOKEN}` });
      assert.equal(json.code, 401);
    });
  });

  describe('upstream failures', () => {
    it('502 carries the upstream message, with any key redacted', async () => {
      upstream.failWith(401, openAiError(401, `Incorrect API key provided: ${UPSTREAM_KEYS[0]}. You can find your API key at https://platform.openai.com.`, 'invalid_request_error', 'invalid_api_key'));
      const { json } = await chat(gateway, { prompt: 'x' });
      assert.equal(json.code, 502);
      assert.match(String(json.msg), /answered 401: Incorrect API key provided/);
      for (const key of UPSTREAM_KEYS) assert.ok(!String(json.msg).includes(key));
      assert.ok(!String(json.msg).includes('sk-upstream'));
    });
    it('502 when the upstream is rate limited, with its message', async () => {
      upstream.failWith(429, openAiError(429, 'Rate limit reached for gpt-4o-mini', 'requests', 'rate_limit_exceeded'));
      const { json } = await chat(gateway, { prompt: 'x' });
      assert.equal(json.code, 502);
      assert.match(String(json.msg), /429: Rate limit reached/);
    });
    it('502 when the upstream answers something that is not JSON', async () => {
      upstream.script((_r, response) => {
        response.writeHead(200, { 'content-type': 'text/html' });
        response.end('<html>oops</html>');
      });
      assert.equal((await chat(gateway, { prompt: 'x' })).json.code, 502);
    });
    it('504 when the upstream does not answer in time', async () => {
      upstream.script(() => undefined);
      const started = Date.now();
      const { json } = await chat(gateway, { prompt: 'x' });
      assert.equal(json.code, 504);
      assert.match(String(json.msg), /sent no response within 0\.5 s/);
      assert.ok(Date.now() - started < 3000);
    });
    it('502 when the upstream cannot be reached', async () => {
      const dead = await FakeUpstream.start();
      const url = dead.url;
      await dead.close();
      const other = await startTestGateway({ BASE_URL: url, ACCESS_TOKEN: TOKEN });
      try {
        const { json } = await chat(other, { prompt: 'x' });
        assert.equal(json.code, 502);
        assert.match(String(json.msg), /unreachable: connection refused/);
      } finally {
        await other.close();
      }
    });
  });

  describe('stream: true', () => {
    it('streams text deltas, then a done event with the whole answer in the envelope', async () => {
      const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Hi', stream: true }) });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(response.headers.get('x-accel-buffering'), 'no');
      const text = await response.text();
      const events = text.split('\n\n').filter((e) => e.length > 0);
      const deltas = events.filter((e) => e.startsWith('data: ')).map((e) => (JSON.parse(e.slice(6)) as { delta: string }).delta);
      assert.equal(deltas.join(''), upstream.replyText);
      assert.ok(deltas.length > 1);
      assert.equal(events.at(-1), `event: done\ndata: ${JSON.stringify({ code: 200, data: upstream.replyText, msg: 'success' })}`);
      assert.equal(upstream.last().json?.stream, true);
    });
    it('ends with an error event when the upstream stream fails midway', async () => {
      upstream.script(async (_request, response) => {
        await sendSse(response, ['{"choices":[{"index":0,"delta":{"content":"Hel"}}]}', '{"error":{"message":"The server had an error","type":"server_error"}}']);
      });
      const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Hi', stream: true }) });
      const text = await response.text();
      assert.match(text, /^data: \{"delta":"Hel"\}\n\n/);
      assert.match(text, /event: error\ndata: \{"code":502,"data":null,"msg":"Upstream \\"default\\" failed mid-stream: The server had an error"\}\n\n$/);
    });
  });

  it('logs one line per request with id, route, model, status and latency, and no prompt or key', async () => {
    const { headers } = await chat(gateway, { prompt: 'a very secret prompt' });
    const id = headers.get('x-request-id');
    const line = gateway.logs.find((l) => l.reqId === id && l.msg === 'request');
    assert.ok(line, 'request log line present');
    assert.equal(line.route, '/api/chat');
    assert.equal(line.model, 'gpt-4o-mini');
    assert.equal(line.status, 200);
    assert.equal(typeof line.latency_ms, 'number');
    assert.equal(typeof line.upstream_ms, 'number');
    const text = gateway.logText();
    assert.ok(!text.includes('a very secret prompt'));
    assert.ok(!text.includes(upstream.replyText));
    for (const secret of [...UPSTREAM_KEYS, TOKEN]) assert.ok(!text.includes(secret), 'no secret in logs');
  });
});

describe('log_bodies', () => {
  it('logs the request body and the answer only when switched on', async () => {
    const upstream = await FakeUpstream.start();
    const gateway = await startTestGateway({ BASE_URL: upstream.url, ACCESS_TOKEN: TOKEN, LOG_BODIES: 'true' });
    try {
      await chat(gateway, { prompt: 'a prompt worth logging' });
      const line = gateway.logs.find((l) => l.msg === 'bodies');
      assert.ok(line, 'a bodies line');
      assert.match(JSON.stringify(line.request_body), /a prompt worth logging/);
      assert.equal(line.answer, upstream.replyText);
      assert.ok(!gateway.logText().includes(TOKEN));
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});
