import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { runCodex } from '../helpers/codex.js';
import type { ResponsesUsage } from '../helpers/fake-sockets.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * The real Codex CLI (`codex exec`) through the real gateway over HTTP, with an app key: the
 * gateway swaps in its own upstream key, meters the turn from `response.completed` (cached and
 * reasoning tokens included) and holds the key's model list.
 */

const UPSTREAM_KEY = 'sk-upstream-codex-cli';
const CODEX_KEY = 'codex-app-key-0123456789abcdef';
const OTHER_MODEL_KEY = 'codex-gpt4o-only-key-0123456789';
const USAGE: ResponsesUsage = { input_tokens: 1200, input_tokens_details: { cached_tokens: 1024 }, output_tokens: 40, output_tokens_details: { reasoning_tokens: 16 }, total_tokens: 1240 };

describe('Codex CLI through the gateway over HTTP', () => {
  let fake: FakeUpstream;
  let gateway: TestGateway;

  before(async () => {
    fake = await FakeUpstream.start();
    gateway = await startTestGateway(
      { BASE_URL: fake.url, APIKEY: UPSTREAM_KEY, MAX_ATTEMPTS: '1' },
      { keys: [{ name: 'codex', key: CODEX_KEY, models: ['gpt-4o-mini'] }, { name: 'gpt-4o-only', key: OTHER_MODEL_KEY, models: ['gpt-4o'] }] },
    );
  });
  after(async () => {
    await gateway.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.reset();
    fake.objects.responseUsage = { ...USAGE };
  });

  const recordsOf = async (keyName: string) => {
    await gateway.gateway.writer.flush();
    return gateway.gateway.database.db.selectFrom('usage_records').selectAll().where('key_name', '=', keyName).execute();
  };

  it("prints the upstream's answer, sends the server's key upstream and meters cached and reasoning tokens under the app key", async () => {
    const result = await runCodex({ baseUrl: `${gateway.url}/v1`, apiKey: CODEX_KEY, prompt: 'say hi' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Hello from the fake upstream\./);

    assert.deepEqual(fake.requests.map((request) => `${request.method} ${request.path}`), ['POST /v1/responses']);
    assert.equal(fake.last().headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.ok(!JSON.stringify(fake.last().headers).includes(CODEX_KEY), 'the app key never reaches the upstream');
    assert.equal(fake.last().json?.stream, true);
    assert.equal(fake.last().json?.stream_options, undefined, 'the Responses API rejects stream_options');

    let records = await recordsOf('codex');
    for (let i = 0; records.length === 0 && i < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      records = await recordsOf('codex');
    }
    assert.equal(records.length, 1);
    const record = records[0]!;
    assert.equal(record.status, 200);
    assert.equal(record.model, 'gpt-4o-mini');
    assert.equal(record.prompt_tokens, USAGE.input_tokens);
    assert.equal(record.completion_tokens, USAGE.output_tokens);
    assert.equal(record.cached_tokens, USAGE.input_tokens_details.cached_tokens);
    assert.equal(record.reasoning_tokens, USAGE.output_tokens_details.reasoning_tokens);
    assert.equal(record.total_tokens, USAGE.total_tokens);
    // gpt-4o-mini's default list prices per 1M tokens: input 0.15, cached input 0.075, output 0.60.
    const cost = ((USAGE.input_tokens - 1024) * 0.15 + 1024 * 0.075 + USAGE.output_tokens * 0.6) / 1e6;
    assert.ok(record.cost_usd !== null && Math.abs(record.cost_usd - cost) < 1e-12, `cost ${record.cost_usd}, expected ${cost}`);
  });

  it("fails Codex clearly when the app key's model list excludes its model, and sends nothing upstream", async () => {
    const result = await runCodex({ baseUrl: `${gateway.url}/v1`, apiKey: OTHER_MODEL_KEY, prompt: 'say hi' });
    assert.equal(result.timedOut, false);
    assert.notEqual(result.code, 0, result.stdout);
    // Codex retries a 403 five times (~6.5 s) before it gives up, then prints the gateway's message.
    assert.match(result.stderr, /ERROR: unexpected status 403 Forbidden: .*gpt-4o-mini/);
    assert.ok(gateway.logs.some((line) => line.caller === 'gpt-4o-only' && line.error === 'model_not_allowed'), 'the gateway refused the model');
    assert.deepEqual(fake.requests, []);
  });
});
