import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import type { PoolSettings, UpstreamConfig } from '../../src/config/index.js';
import { GatewayError } from '../../src/errors/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { relayBody, type RelayOutcome } from '../../src/streaming/relay-response.js';
import { ModelCatalog } from '../../src/upstream/model-catalog.js';
import { UpstreamPool, type PoolRequest } from '../../src/upstream/pool.js';
import { FakeAnthropic } from '../helpers/fake-anthropic.js';
import { TEST_TIMEOUTS, upstreamFixture } from '../helpers/upstream-fixture.js';

// An Anthropic upstream in the pool beside an OpenAI one: requests reach only the upstreams that
// speak their protocol, 529 fails over like 503, the catalogue reads Anthropic's model list, and
// the relay meters Anthropic's answers (cache reads and writes included).

const SETTINGS: PoolSettings = { maxAttempts: 3, retryBaseDelayMs: 10, cooldownMs: 30_000, circuitErrorRatio: 0.5, circuitMinRequests: 4, circuitWindowMs: 30_000, circuitOpenMs: 30_000 };

const { fake, track } = upstreamFixture();
const anthropicFakes: FakeAnthropic[] = [];
after(async () => {
  await Promise.all(anthropicFakes.map((started) => started.close()));
});
async function fakeAnthropic(): Promise<FakeAnthropic> {
  const started = await FakeAnthropic.start();
  anthropicFakes.push(started);
  return started;
}

const keyOf = (name: string, index = 0): string => `sk-${name}-anthropic-test-key-${index}`;

function openaiEntry(name: string, baseUrl: string, overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { name, type: 'openai', baseUrl, apiKeys: [keyOf(name)], weight: 1, models: ['*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: true, websockets: true, anthropicVersion: undefined, ...overrides };
}

function anthropicEntry(name: string, baseUrl: string, overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { name, type: 'anthropic', baseUrl, apiKeys: [keyOf(name)], weight: 1, models: ['claude-*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: false, websockets: false, anthropicVersion: '2023-06-01', ...overrides };
}

function poolOf(upstreams: UpstreamConfig[], settings: Partial<PoolSettings> = {}): UpstreamPool {
  const logger = createLogger('info', { write: () => undefined });
  return track(new UpstreamPool(upstreams, { ...SETTINGS, ...settings }, { logger, timeouts: TEST_TIMEOUTS, random: () => 0, sleep: async () => undefined }));
}

const messages = (overrides: Partial<PoolRequest> = {}): PoolRequest => ({
  model: 'claude-sonnet-4-5',
  method: 'POST',
  path: '/messages',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }),
  signal: AbortSignal.timeout(10_000),
  protocol: 'anthropic',
  ...overrides,
});

describe('an Anthropic upstream in the pool', () => {
  it('takes only Anthropic requests, with x-api-key and anthropic-version; the caller\'s version wins', async () => {
    const claude = await fakeAnthropic();
    const openai = await fake();
    const pool = poolOf([openaiEntry('openai', openai.url, { models: ['gpt-*', 'claude-*'] }), anthropicEntry('claude', claude.url)]);
    const answer = await pool.send(messages({ path: '/messages?beta=true' }));
    assert.equal(answer.upstream, 'claude');
    assert.equal(answer.response.statusCode, 200);
    await answer.response.body.dump();
    const request = claude.last();
    assert.equal(request.url, '/v1/messages?beta=true');
    assert.equal(request.headers['x-api-key'], keyOf('claude'));
    assert.equal(request.headers.authorization, undefined);
    assert.equal(request.headers['anthropic-version'], '2023-06-01');
    const versioned = await pool.send(messages({ headers: { 'content-type': 'application/json', 'anthropic-version': '2026-10-21', 'x-api-key': 'the-callers-app-key' } }));
    await versioned.response.body.dump();
    assert.deepEqual([claude.last().headers['anthropic-version'], claude.last().headers['x-api-key']], ['2026-10-21', keyOf('claude')]);
    // The same model in the OpenAI protocol goes to the OpenAI upstream only.
    const chat = await pool.send({ ...messages(), path: '/chat/completions', protocol: undefined });
    await chat.response.body.dump();
    assert.equal(chat.upstream, 'openai');
    assert.deepEqual(pool.protocolsFor('claude-sonnet-4-5'), { openai: true, anthropic: true });
    assert.deepEqual(pool.protocolsFor('gpt-4o'), { openai: true, anthropic: false });
    assert.deepEqual(pool.protocolsFor('llama3'), { openai: false, anthropic: false });
    assert.equal(pool.acceptsIncludeUsage('claude-sonnet-4-5'), true, 'the Anthropic upstream does not count for stream_options');
  });

  it('refuses an Anthropic request for a model only an OpenAI upstream serves', async () => {
    const openai = await fake();
    const pool = poolOf([openaiEntry('openai', openai.url)]);
    await assert.rejects(pool.send(messages()), (error: unknown) => error instanceof GatewayError && error.code === 'model_not_found');
    assert.equal(openai.requests.length, 0);
  });

  it('fails over on 529 overloaded like 503: to another key at once, then another upstream, and counts it on the circuit', async () => {
    const busy = await fakeAnthropic();
    const spare = await fakeAnthropic();
    busy.overloaded(Number.POSITIVE_INFINITY);
    const pool = poolOf([anthropicEntry('busy', busy.url, { apiKeys: [keyOf('busy', 0), keyOf('busy', 1)] }), anthropicEntry('spare', spare.url)]);
    const answer = await pool.send(messages());
    assert.equal(answer.upstream, 'spare');
    assert.equal(answer.attempts, 2, 'a 529 is a fault of the upstream: the next attempt goes to another one');
    await answer.response.body.dump();
    const alone = poolOf([anthropicEntry('busy', busy.url)], { maxAttempts: 2 });
    const refused = await alone.send(messages());
    assert.equal(refused.response.statusCode, 529, 'the last 529 is relayed as it came');
    assert.deepEqual(await refused.response.body.json(), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    for (let i = 0; i < 2; i++) await (await alone.send(messages())).response.body.dump();
    assert.equal(alone.state()[0]!.circuit, 'open', JSON.stringify(alone.state()[0]));
  });

  it('lists its models in the catalogue, asked in its own protocol for its largest page, only those it serves', async () => {
    const claude = await fakeAnthropic();
    const openai = await fake();
    const pool = poolOf([openaiEntry('openai', openai.url, { models: ['gpt-4o*'] }), anthropicEntry('claude', claude.url, { models: ['claude-sonnet-*', 'claude-haiku-*'] })]);
    const models = await new ModelCatalog(pool).models();
    assert.deepEqual(models.map((model) => `${model.id} (${model.owned_by})`), ['claude-haiku-4-5-20251001 (claude)', 'claude-sonnet-4-5-20250929 (claude)', 'gpt-4o (openai)', 'gpt-4o-mini (openai)']);
    assert.deepEqual(models[1], { id: 'claude-sonnet-4-5-20250929', object: 'model', created: Date.parse('2025-09-29T00:00:00Z') / 1000, owned_by: 'claude', display_name: 'Claude Sonnet 4.5' });
    assert.equal(claude.last().url, '/v1/models?limit=1000');
    assert.equal(claude.last().headers['x-api-key'], keyOf('claude'));
    assert.equal(openai.requests.filter((request) => request.path === '/v1/models').length, 1, 'the OpenAI list was asked of the OpenAI upstream once');
  });
});

/** A client-facing server that sends each request on to the pool and relays the answer with relayBody, as a native Anthropic route does. */
async function relayServer(pool: UpstreamPool, outcomes: RelayOutcome[]): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    void (async () => {
      const stream = request.url === '/stream';
      const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 100, stream, messages: [{ role: 'user', content: 'hi' }] });
      const answer = await pool.send(messages({ body }));
      const isSse = String(answer.response.headers['content-type']).startsWith('text/event-stream');
      response.writeHead(answer.response.statusCode, { 'content-type': String(answer.response.headers['content-type']) });
      const failure = (error: unknown): GatewayError => new GatewayError('upstream_error', `cut: ${(error as Error).message}`);
      outcomes.push(await relayBody(response, answer.response.body, isSse, { meter: true, dropUsageEvent: false, expectDone: true, keepaliveMs: 0, failure, secrets: pool.secrets(), protocol: 'anthropic' }, () => undefined));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('relaying an Anthropic answer', () => {
  const usage = { promptTokens: 4025, completionTokens: 6, totalTokens: 4031, cachedTokens: 3000, cacheWriteTokens: 1000, reasoningTokens: 0 };

  it('meters a JSON message and an event stream by Anthropic\'s usage, cache reads and writes included, bytes unchanged', async (t) => {
    const claude = await fakeAnthropic();
    const outcomes: RelayOutcome[] = [];
    const { url, server } = await relayServer(poolOf([anthropicEntry('claude', claude.url)]), outcomes);
    t.after(() => server.close());
    const whole = await fetch(`${url}/json`);
    assert.equal((await whole.json() as { content: Array<{ text: string }> }).content[0]!.text, claude.replyText);
    const streamed = await (await fetch(`${url}/stream`)).text();
    assert.match(streamed, /^event: message_start\n/);
    assert.match(streamed, /event: message_stop\ndata: \{"type":"message_stop"\}\n\n$/);
    assert.deepEqual(outcomes.map((outcome) => [outcome.usage, outcome.error]), [[usage, undefined], [usage, undefined]]);
  });

  it('ends a stream the upstream dropped before message_stop with Anthropic\'s error event, and estimates from the text seen', async (t) => {
    const claude = await fakeAnthropic();
    const outcomes: RelayOutcome[] = [];
    const { url, server } = await relayServer(poolOf([anthropicEntry('claude', claude.url)]), outcomes);
    t.after(() => server.close());
    claude.dropMidStream();
    const text = await (await fetch(`${url}/stream`)).text();
    assert.match(text, /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"cut: [^"]*"/);
    const outcome = outcomes[0]!;
    assert.equal(outcome.usage, undefined, 'message_start announces 1 output token: not billed as if that were all');
    assert.equal(outcome.textSeen?.(), 'Hello ');
    assert.equal(outcome.error?.code, 'upstream_error');
  });

  it('relays an error event mid-stream as the upstream sent it, upstream keys blanked, without a second error', async (t) => {
    const claude = await fakeAnthropic();
    const outcomes: RelayOutcome[] = [];
    const { url, server } = await relayServer(poolOf([anthropicEntry('claude', claude.url)]), outcomes);
    t.after(() => server.close());
    claude.errorMidStream('overloaded_error', `Overloaded for key ${keyOf('claude')}`);
    const text = await (await fetch(`${url}/stream`)).text();
    assert.ok(text.endsWith('event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded for key [redacted]"}}\n\n'), text);
    assert.equal(text.match(/event: error/g)?.length, 1);
    assert.equal(outcomes[0]!.error, undefined);
  });
});
