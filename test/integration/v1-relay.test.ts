import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import OpenAI, { toFile } from 'openai';
import { chatStreamEvents, FakeUpstream, openAiError, sendJson, sendSse } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const TOKEN = 'v1-access-token';
const UPSTREAM_KEY = 'sk-v1-upstream-secret-key';

describe('/v1 relay', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  let client: OpenAI;

  before(async () => {
    upstream = await FakeUpstream.start();
    gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: UPSTREAM_KEY, ACCESS_TOKEN: TOKEN, FIRST_BYTE_TIMEOUT: '1', IDLE_TIMEOUT: '1', V1_BODY_LIMIT: '256KiB', MAX_ATTEMPTS: '1', COOLDOWN: '0.05', MODEL_ALIAS: '{"fast":"gpt-4o-mini"}', OPENAI_ORGANIZATION: 'org-gateway' });
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });
  beforeEach(() => upstream.reset());

  describe('with the official openai SDK', () => {
    it('chat.completions.create returns the upstream answer and usage', async () => {
      const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(completion.choices[0]?.message.content, upstream.replyText);
      assert.equal(completion.usage?.total_tokens, 17);
      const sent = upstream.last();
      assert.equal(sent.path, '/v1/chat/completions');
      assert.equal(sent.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
      assert.equal(sent.headers['openai-organization'], 'org-gateway');
      assert.deepEqual(sent.json, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] }, 'transparent: no persona, no defaults');
    });

    it('passes the upstream request id, processing time and rate-limit headers', async () => {
      const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] }).withResponse();
      assert.match(response.headers.get('openai-request-id') ?? '', /^req_fake_/);
      assert.equal(response.headers.get('openai-processing-ms'), '42');
      assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '99');
      assert.match(response.headers.get('x-request-id') ?? '', /^req_/);
    });

    it('streams a chat with for await; the usage event the gateway asked for is not shown', async () => {
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true });
      let text = '';
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        assert.equal(chunk.usage, undefined, 'no usage key when the client did not ask');
        text += chunk.choices[0]?.delta.content ?? '';
      }
      assert.equal(text, upstream.replyText);
      assert.equal(chunks, chatStreamEvents('gpt-4o-mini', upstream.replyText, false).length - 1);
      assert.deepEqual(upstream.last().json?.stream_options, { include_usage: true });
      await gateway.gateway.writer.flush();
      const records = await gateway.gateway.database.db.selectFrom('usage_records').selectAll().where('route', '=', '/v1/chat/completions').orderBy('id', 'desc').limit(1).execute();
      assert.equal(records[0]?.usage_source, 'upstream', 'the gateway read usage from the stream');
      assert.equal(records[0]?.total_tokens, 17);
    });

    it('streams with include_usage when the client asks, final chunk carrying usage', async () => {
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(chunks.at(-1)?.usage?.total_tokens, 17);
      assert.deepEqual(chunks.at(-1)?.choices, []);
    });

    it('creates embeddings and lists models', async () => {
      const embeddings = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
      assert.deepEqual(embeddings.data[0]?.embedding, [0.1, 0.2, 0.3]);
      const models = [];
      for await (const model of client.models.list()) models.push(model.id);
      assert.deepEqual(models, ['gpt-4o', 'gpt-4o-mini'], "the upstream's own list, served (and cached) by the gateway");
    });

    it('surfaces an upstream 429 as RateLimitError with status 429 and the upstream body', async () => {
      upstream.failWith(429, openAiError(429, 'Rate limit reached for gpt-4o-mini', 'requests', 'rate_limit_exceeded'), { 'retry-after': '1' });
      await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.RateLimitError);
        assert.equal(error.status, 429);
        assert.equal(error.code, 'rate_limit_exceeded');
        assert.equal(error.headers.get('retry-after'), '1');
        return true;
      });
    });

    it('a wrong gateway key is AuthenticationError and never reaches the upstream', async () => {
      const wrong = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
      await assert.rejects(wrong.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.AuthenticationError);
        assert.equal(error.code, 'invalid_api_key');
        return true;
      });
      assert.equal(upstream.requests.length, 0);
    });

    it('uploads an audio transcription byte-exact, streamed through', async () => {
      const audio = randomBytes(200 * 1024);
      const result = await client.audio.transcriptions.create({ file: await toFile(audio, 'speech.mp3', { type: 'audio/mpeg' }), model: 'whisper-1' });
      const sent = upstream.last();
      assert.match(String(sent.headers['content-type']), /^multipart\/form-data; boundary=/);
      assert.equal(result.text, `sha256:${createHash('sha256').update(sent.body).digest('hex')} bytes:${sent.body.length}`);
      assert.ok(sent.body.includes(audio), 'the file bytes arrived unchanged');
    });
  });

  describe('with the Vercel AI SDK', () => {
    it('generateText', async () => {
      const provider = createOpenAI({ baseURL: `${gateway.url}/v1`, apiKey: TOKEN });
      const result = await generateText({ model: provider.chat('gpt-4o-mini'), prompt: 'Hi' });
      assert.equal(result.text, upstream.replyText);
      assert.equal(result.usage.inputTokens, 12);
    });
    it('streamText', async () => {
      const provider = createOpenAI({ baseURL: `${gateway.url}/v1`, apiKey: TOKEN });
      const result = streamText({ model: provider.chat('gpt-4o-mini'), prompt: 'Hi' });
      let text = '';
      for await (const part of result.textStream) text += part;
      assert.equal(text, upstream.replyText);
      assert.equal((await result.usage).outputTokens, 5);
    });
  });

  describe('streaming behaviour', () => {
    it('delivers the first event while the upstream is still producing', async () => {
      upstream.script((request, response) => sendSse(response, chatStreamEvents('gpt-4o-mini', 'one two three four', true), { delayMs: 300 }));
      const started = Date.now();
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true });
      let firstAt = 0;
      for await (const chunk of stream) {
        if (firstAt === 0) firstAt = Date.now() - started;
        void chunk;
      }
      const total = Date.now() - started;
      assert.ok(firstAt < 250, `first event after ${firstAt} ms`);
      assert.ok(total >= 1500, `stream lasted ${total} ms`);
    });

    it('closes the upstream connection within 1 s when the client aborts mid-stream', async () => {
      upstream.script((request, response) => sendSse(response, chatStreamEvents('gpt-4o-mini', 'a b c d e f g h i j k l m n o p', true), { delayMs: 200 }));
      const controller = new AbortController();
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true }, { signal: controller.signal });
      const iterator = stream[Symbol.asyncIterator]();
      await iterator.next();
      const abortedAt = Date.now();
      controller.abort();
      await iterator.next().catch(() => undefined);
      const closedAt = await upstream.last().closed;
      assert.ok(closedAt - abortedAt < 1000, `upstream closed ${closedAt - abortedAt} ms after the abort`);
    });

    it('sends ": keep-alive" while the upstream is silent mid-stream', async () => {
      const quiet = await startTestGateway({ BASE_URL: upstream.url, ACCESS_TOKEN: TOKEN, SSE_KEEPALIVE: '0.1', IDLE_TIMEOUT: '2' });
      try {
        upstream.script(async (request, response) => {
          response.writeHead(200, { 'content-type': 'text/event-stream' });
          response.write('data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n');
          await new Promise((resolve) => setTimeout(resolve, 450));
          response.end('data: [DONE]\n\n');
        });
        const response = await fetch(`${quiet.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [], stream: true }) });
        assert.equal(response.headers.get('x-accel-buffering'), 'no');
        assert.equal(response.headers.get('cache-control'), 'no-cache');
        const text = await response.text();
        assert.ok((text.match(/: keep-alive\n\n/g) ?? []).length >= 2, text);
        assert.ok(text.startsWith('data: {"choices"'));
        assert.ok(text.endsWith('data: [DONE]\n\n'));
      } finally {
        await quiet.close();
      }
    });

    it('commits to a stream with keep-alives while a slow upstream has not answered yet', async () => {
      const quiet = await startTestGateway({ BASE_URL: upstream.url, ACCESS_TOKEN: TOKEN, SSE_KEEPALIVE: '0.1', FIRST_BYTE_TIMEOUT: '2' });
      try {
        upstream.script(async (request, response) => {
          await new Promise((resolve) => setTimeout(resolve, 350));
          await sendSse(response, chatStreamEvents('m', 'late answer', false));
        });
        const response = await fetch(`${quiet.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [], stream: true }) });
        assert.equal(response.status, 200);
        const text = await response.text();
        assert.ok(text.startsWith(': keep-alive\n\n'), text);
        assert.ok(text.includes('"content":"late "'));
        assert.ok(text.endsWith('data: [DONE]\n\n'));
      } finally {
        await quiet.close();
      }
    });

    it('ends a stream that fails midway with an SSE error event the SDK throws on', async () => {
      upstream.script(async (request, response, socket) => {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.write(`data: ${chatStreamEvents('m', 'partial', true)[1]}\n\n`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        socket.destroy();
      });
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true });
      let text = '';
      await assert.rejects(async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      }, /Upstream "default"/);
      assert.equal(text, 'partial');
    });
  });

  describe('gateway errors in OpenAI shape', () => {
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${gateway.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers }, body });

    it('400 for a JSON body that does not parse, nothing sent upstream', async () => {
      const response = await post('/v1/chat/completions', '{"model": "x", ');
      assert.equal(response.status, 400);
      const body = (await response.json()) as { error: { code: string; message: string; type: string; param: unknown } };
      assert.equal(body.error.code, 'invalid_json');
      assert.equal(body.error.type, 'invalid_request_error');
      assert.match(body.error.message, /not valid JSON/);
      assert.equal(upstream.requests.length, 0);
    });

    it('401 without a key, 413 over v1_body_limit, both before the upstream', async () => {
      const noKey = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(noKey.status, 401);
      assert.equal(((await noKey.json()) as { error: { code: string } }).error.code, 'missing_api_key');
      const big = await post('/v1/chat/completions', JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'x'.repeat(300 * 1024) }] }));
      assert.equal(big.status, 413);
      assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'body_too_large');
      assert.equal(upstream.requests.length, 0);
    });

    it('413 for a chunked upload that passes the limit', async () => {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${gateway.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'multipart/form-data; boundary=x', 'transfer-encoding': 'chunked' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        for (let i = 0; i < 40; i++) req.write(randomBytes(16 * 1024));
        req.end();
      });
      assert.equal(status, 413);
    });

    it('passes an upstream 400 through with its status and body', async () => {
      const upstreamBody = openAiError(400, "Unsupported parameter: 'max_tokens' is not supported with this model.", 'invalid_request_error', 'unsupported_parameter');
      upstream.failWith(400, upstreamBody);
      const response = await post('/v1/chat/completions', JSON.stringify({ model: 'o3', messages: [], max_tokens: 5 }));
      assert.equal(response.status, 400);
      assert.deepEqual(await response.json(), upstreamBody);
    });

    it('502 when the upstream is unreachable, 504 when it does not answer', async () => {
      upstream.script(() => undefined);
      const slow = await post('/v1/chat/completions', JSON.stringify({ model: 'm', messages: [] }));
      assert.equal(slow.status, 504);
      assert.equal(((await slow.json()) as { error: { code: string } }).error.code, 'upstream_timeout');
      const dead = await FakeUpstream.start();
      const deadUrl = dead.url;
      await dead.close();
      const other = await startTestGateway({ BASE_URL: deadUrl, ACCESS_TOKEN: TOKEN });
      try {
        const response = await fetch(`${other.url}/v1/files`, { headers: { authorization: `Bearer ${TOKEN}` } });
        assert.equal(response.status, 502);
        assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'upstream_unreachable');
      } finally {
        await other.close();
      }
    });

    it('404 for an unknown route outside /v1', async () => {
      const response = await post('/v2/chat/completions', '{}');
      assert.equal(response.status, 404);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'not_found');
    });

    it('refuses paths that climb out of the upstream base', async () => {
      for (const path of ['/v1/../admin', '/v1/%2e%2e/admin', '/v1/files/./x']) {
        const response = await fetch(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        assert.ok(response.status === 400 || response.status === 404, `${path} → ${response.status}`);
      }
      assert.ok(upstream.requests.every((r) => !r.path.includes('admin')));
    });
  });

  describe('relay details', () => {
    it('forwards any endpoint, method and query unchanged (files, batches, tomorrow’s endpoints)', async () => {
      upstream.script((request, response) => sendJson(response, 200, { ok: true, path: request.url }), 3);
      const get = await fetch(`${gateway.url}/v1/files?purpose=batch&limit=2`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.deepEqual(await get.json(), { ok: true, path: '/v1/files?purpose=batch&limit=2' });
      const del = await fetch(`${gateway.url}/v1/files/file-abc`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(upstream.last().method, 'DELETE');
      assert.equal(del.status, 200);
      const future = await fetch(`${gateway.url}/v1/brand/new/endpoint`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'openai-beta': 'assistants=v2' }, body: '{"x":1}' });
      assert.equal(future.status, 200);
      const sent = upstream.last();
      assert.equal(sent.path, '/v1/brand/new/endpoint');
      assert.equal(sent.headers['openai-beta'], 'assistants=v2');
      assert.equal(sent.body.toString(), '{"x":1}', 'bytes unchanged');
      assert.equal(sent.headers.host, new URL(upstream.url).host);
    });

    it('resolves a model alias before forwarding', async () => {
      await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(upstream.last().json?.model, 'gpt-4o-mini');
    });

    it('keeps upstream bodies and the upstream key out of logs', async () => {
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'my private prompt' }] });
      const text = gateway.logText();
      assert.ok(!text.includes(UPSTREAM_KEY));
      assert.ok(!text.includes(TOKEN));
      assert.ok(!text.includes('my private prompt'));
    });
  });
});

describe('/v1 with v1_defaults', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  before(async () => {
    upstream = await FakeUpstream.start();
    gateway = await startTestGateway({ BASE_URL: upstream.url, ACCESS_TOKEN: TOKEN, V1_DEFAULTS: 'true', BOT_DESC: 'Be a pirate.', MODEL: 'gpt-4o', TEMPERATURE: '0.3' });
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  it('fills only what the caller left out', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
    await client.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], temperature: 1 } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.deepEqual(upstream.last().json, {
      messages: [
        { role: 'system', content: 'Be a pirate.' },
        { role: 'user', content: 'Hi' },
      ],
      temperature: 1,
      model: 'gpt-4o',
      max_tokens: 512,
      top_p: 1,
      frequency_penalty: 0,
      presence_penalty: 0.6,
    });
  });
});
