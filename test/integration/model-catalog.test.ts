import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PoolSettings, UpstreamConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { ModelCatalog } from '../../src/upstream/model-catalog.js';
import { UpstreamPool } from '../../src/upstream/pool.js';
import type { FakeUpstream} from '../helpers/fake-upstream.js';
import { openAiError } from '../helpers/fake-upstream.js';
import { TEST_TIMEOUTS, upstreamFixture } from '../helpers/upstream-fixture.js';

const SETTINGS: PoolSettings = { maxAttempts: 3, retryBaseDelayMs: 10, cooldownMs: 30_000, circuitErrorRatio: 0.5, circuitMinRequests: 10, circuitWindowMs: 30_000, circuitOpenMs: 30_000 };
const TIMEOUTS = TEST_TIMEOUTS;

const { fake, track } = upstreamFixture();

const keyOf = (name: string, index = 0): string => `sk-${name}-catalog-key-${String(index).padStart(4, '0')}`;

function entry(name: string, baseUrl: string, overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { name, type: 'openai', baseUrl, apiKeys: [keyOf(name)], weight: 1, models: ['*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: true, websockets: true, anthropicVersion: undefined, ...overrides };
}

function catalogOf(upstreams: UpstreamConfig[], options: { settings?: Partial<PoolSettings>; timeouts?: Partial<typeof TIMEOUTS> } = {}): { pool: UpstreamPool; catalog: ModelCatalog; clock: { now: number } } {
  const clock = { now: Date.parse('2026-03-01T12:00:00Z') };
  const logger = createLogger('info', { write: () => undefined });
  const pool = new UpstreamPool(upstreams, { ...SETTINGS, ...options.settings }, { logger, timeouts: { ...TIMEOUTS, ...options.timeouts }, random: () => 0 });
  track(pool);
  return { pool, catalog: new ModelCatalog(pool, () => clock.now), clock };
}

const listed = (models: Array<{ id: string; owned_by: string }>): string[] => models.map((model) => `${model.id} (${model.owned_by})`);
const modelRequests = (upstream: FakeUpstream) => upstream.requests.filter((request) => request.path === '/v1/models');

describe('model catalogue', () => {
  it("lists the models each upstream's own list names and it serves, then the configured names, sorted", async () => {
    const chat = await fake();
    const embeddings = await fake();
    const { catalog } = catalogOf([entry('chat', chat.url, { models: ['gpt-4o*'] }), entry('emb', embeddings.url, { models: ['text-embedding-3-small', 'o3'] })]);
    // The fake lists gpt-4o-mini and gpt-4o: "emb" serves neither, so it adds only its configured names.
    assert.deepEqual(listed(await catalog.models()), ['gpt-4o (openai)', 'gpt-4o-mini (openai)', 'o3 (openai-api)', 'text-embedding-3-small (openai-api)']);
    assert.deepEqual(modelRequests(chat).map((request) => request.headers.authorization), [`Bearer ${keyOf('chat')}`]);
    assert.equal(modelRequests(embeddings).length, 1);
  });

  it('fetches the lists at most every five minutes', async () => {
    const upstream = await fake();
    const { catalog, clock } = catalogOf([entry('a', upstream.url)]);
    await Promise.all([catalog.models(), catalog.models()]);
    await catalog.models();
    assert.equal(modelRequests(upstream).length, 1, 'one load for concurrent and repeated calls');
    clock.now += 5 * 60_000;
    await catalog.models();
    assert.equal(modelRequests(upstream).length, 2);
  });

  it('asks for the list like any request: a refused key is set aside and the next key answers', async () => {
    const upstream = await fake();
    upstream.failWith(401, openAiError(401, 'Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'));
    const { pool, catalog } = catalogOf([entry('keys', upstream.url, { apiKeys: [keyOf('keys', 0), keyOf('keys', 1)] })]);
    assert.deepEqual(listed(await catalog.models()), ['gpt-4o (openai)', 'gpt-4o-mini (openai)']);
    assert.deepEqual(modelRequests(upstream).map((request) => request.headers.authorization), [`Bearer ${keyOf('keys', 0)}`, `Bearer ${keyOf('keys', 1)}`]);
    assert.deepEqual(pool.state()[0]!.keys.map((key) => key.status), ['disabled', 'healthy']);
  });

  it('leaves out an upstream that fails or never answers, within the first-byte timeout, and retries a 5xx', async () => {
    const failing = await fake();
    const silent = await fake();
    const flaky = await fake();
    failing.failWith(500, openAiError(500, 'down', 'server_error', null), {}, Number.POSITIVE_INFINITY);
    silent.script(() => undefined, Number.POSITIVE_INFINITY);
    flaky.failWith(503, openAiError(503, 'busy', 'server_error', null));
    const { catalog } = catalogOf([entry('failing', failing.url, { models: ['gpt-4o'] }), entry('silent', silent.url), entry('flaky', flaky.url, { models: ['gpt-4o-mini'] })], { settings: { maxAttempts: 2 }, timeouts: { firstByteTimeoutMs: 300 } });
    const started = Date.now();
    assert.deepEqual(listed(await catalog.models()), ['gpt-4o (openai-api)', 'gpt-4o-mini (openai)']);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    assert.equal(modelRequests(failing).length, 2, 'the 500 was retried once (max_attempts 2), then left out');
    assert.equal(modelRequests(flaky).length, 2, 'the 503 was retried and the second answer listed');
  });

  it('does not ask Azure, whose list names base models rather than deployments; its deployments are listed', async () => {
    const azure = await fake();
    const { catalog } = catalogOf([entry('azure', azure.url, { type: 'azure', apiKeys: ['azure-key-0123456789abcdef'], apiVersion: '2024-10-21', deployments: { 'gpt-4o': 'my-gpt4o' } })]);
    assert.deepEqual(listed(await catalog.models()), ['gpt-4o (openai-api)']);
    assert.equal(azure.requests.length, 0);
  });
});
