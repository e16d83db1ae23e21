import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Response as ApiResponse } from 'openai/resources/responses/responses';
import { DEFAULT_PRICES } from '../../src/metering/pricing.js';
import { requirePostgres, storageBackends, type TestDatabase } from '../helpers/databases.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { usageRecord, type UsageRow } from '../helpers/usage-records.js';

const ADMIN = 'admin-token-responses-http-0123456789';
const ACCESS = 'owner-access-token-responses-http';
/** Two upstream keys are two accounts at the fake: a response lives in one of them only, so a follow-up sent with the other key gets 404. */
const ACCOUNTS = ['sk-account-one-0123456789', 'sk-account-two-0123456789'];
const MODEL = 'gpt-4o-mini';
/** What the fake's responses report in these tests: every counter non-zero, cached and reasoning included. */
const USAGE = { input_tokens: 1000, input_tokens_details: { cached_tokens: 400 }, output_tokens: 500, output_tokens_details: { reasoning_tokens: 200 }, total_tokens: 1500 };
const SMALL_USAGE = { input_tokens: 20, input_tokens_details: { cached_tokens: 5 }, output_tokens: 10, output_tokens_details: { reasoning_tokens: 4 }, total_tokens: 30 };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const requestId = (): string => `rq-${randomBytes(6).toString('hex')}`;

/** USD of `usage` at the price table's gpt-4o-mini prices: cached input tokens at the cached-input price. */
function expectedCost(usage: typeof USAGE): number {
  const price = DEFAULT_PRICES[MODEL]!;
  const cached = usage.input_tokens_details.cached_tokens;
  return ((usage.input_tokens - cached) * price.input + cached * price.cachedInput! + usage.output_tokens * price.output!) / 1e6;
}

function assertMetered(row: UsageRow, usage: typeof USAGE, what: string): void {
  assert.equal(row.usage_source, 'upstream', what);
  assert.equal(row.prompt_tokens, usage.input_tokens, `${what}: input tokens`);
  assert.equal(row.completion_tokens, usage.output_tokens, `${what}: output tokens`);
  assert.equal(row.cached_tokens, usage.input_tokens_details.cached_tokens, `${what}: cached tokens`);
  assert.equal(row.reasoning_tokens, usage.output_tokens_details.reasoning_tokens, `${what}: reasoning tokens`);
  assert.equal(row.total_tokens, usage.total_tokens, `${what}: total tokens`);
  assert.ok(row.cost_usd !== null && Math.abs(row.cost_usd - expectedCost(usage)) < 1e-9, `${what}: cost ${row.cost_usd} is ${expectedCost(usage)}`);
  assert.equal(row.model, MODEL, what);
}

/** Polls a background response until it is no longer queued or in progress. */
async function untilFinished(client: OpenAI, id: string, options: OpenAI.RequestOptions = {}): Promise<ApiResponse> {
  for (let i = 0; i < 50; i++) {
    const response = await client.responses.retrieve(id, undefined, options);
    if (response.status !== 'queued' && response.status !== 'in_progress') return response;
    await sleep(20);
  }
  assert.fail(`response ${id} never finished`);
}

/*
 * The Responses API over HTTP, metered exactly (issue 12), with the official SDK against the real
 * gateway: usage from bodies and from each terminal stream event, with cached and reasoning
 * tokens and cached-input prices; background responses admitted on a reservation and metered once,
 * under the key that created them, however often and from wherever they are retrieved.
 * PostgreSQL when TEST_DATABASE_URL is set (two gateways share it below), SQLite otherwise.
 */
const postgres = requirePostgres();
const backend = postgres.skip === false ? postgres : storageBackends()[0]!;

describe(`the Responses API over HTTP on ${backend.name}`, () => {
  let upstream: FakeUpstream;
  let database: TestDatabase;
  let gateway: TestGateway;
  const keys: Record<string, string> = {};
  const keyIds: Record<string, string> = {};

  const sdk = (key: string, url = gateway.url) => new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 });
  const withId = (id: string): OpenAI.RequestOptions => ({ headers: { 'x-request-id': id } });
  /** Every usage record whose request id or route matches, after the writer flushed. */
  const records = async (where: { route?: string; keyName?: string; requestIdLike?: string }) => {
    await gateway.gateway.writer.flush();
    let query = database.db.selectFrom('usage_records').selectAll();
    if (where.route !== undefined) query = query.where('route', '=', where.route);
    if (where.keyName !== undefined) query = query.where('key_name', '=', where.keyName);
    if (where.requestIdLike !== undefined) query = query.where('request_id', 'like', where.requestIdLike);
    return query.orderBy('id').execute();
  };
  /** The usage records of a background response's usage: waits for the first, then long enough for a second to show up if there were one. */
  const settlements = async (responseId: string, flush: Array<() => Promise<void>> = []) => {
    const route = `/v1/responses/${responseId}`;
    const settled = async () => {
      for (const write of flush) await write();
      return (await records({ route })).filter((row) => row.request_id.endsWith(':usage'));
    };
    for (let i = 0; i < 100 && (await settled()).length === 0; i++) await sleep(20);
    await sleep(150);
    return settled();
  };

  before(async () => {
    upstream = await FakeUpstream.start();
    database = await backend.open();
    gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: ACCOUNTS.join('|'), ACCESS_TOKEN: ACCESS, ADMIN_TOKEN: ADMIN, DATABASE_URL: database.url, MAX_ATTEMPTS: '1' });
    const create = async (attributes: Record<string, unknown>): Promise<void> => {
      const created = await fetch(`${gateway.adminUrl}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(attributes) });
      const body = (await created.json()) as { key: string; id: string };
      assert.equal(created.status, 201, JSON.stringify(body));
      keys[attributes.name as string] = body.key;
      keyIds[attributes.name as string] = body.id;
    };
    await create({ name: 'alice' });
    await create({ name: 'bob' });
    await create({ name: 'spender', budget_tokens: 1000 });
    await create({ name: 'holder', budget_tokens: 1000 });
    await create({ name: 'rate', tpm: 1000 });
  });
  after(async () => {
    await gateway.close();
    await database.cleanup();
    await upstream.close();
  });
  beforeEach(() => {
    upstream.reset();
    upstream.objects.resetResponses();
    upstream.objects.responseUsage = USAGE;
  });

  describe('metering what the answer reports', () => {
    it('meters a non-streamed response with its cached and reasoning tokens, priced with the cached-input price', async () => {
      const price = DEFAULT_PRICES[MODEL]!;
      assert.ok(price.cachedInput! < price.input, 'the price table discounts cached input, so the test tells the prices apart');
      const id = requestId();
      const response = await sdk(keys.alice!).responses.create({ model: MODEL, input: 'hello' }, withId(id));
      assert.equal(response.status, 'completed');
      assert.deepEqual(response.usage, USAGE, 'the client gets the usage untouched');
      const row = await usageRecord(gateway, id);
      assertMetered(row, USAGE, 'non-streamed');
      assert.equal(row.key_name, 'alice');
      assert.equal(row.route, '/v1/responses');
      assert.equal(upstream.last().json!.stream_options, undefined, 'no stream_options on /v1/responses');
    });

    it('meters responses.stream() and create({stream: true}) from response.completed, never sending stream_options', async () => {
      const client = sdk(keys.alice!);
      const streamed = requestId();
      const stream = client.responses.stream({ model: MODEL, input: 'hello' }, withId(streamed));
      const final = await stream.finalResponse();
      assert.equal(final.status, 'completed');
      assert.equal(final.output_text, upstream.replyText);
      assertMetered(await usageRecord(gateway, streamed), USAGE, 'responses.stream()');

      const created = requestId();
      const events: string[] = [];
      for await (const event of await client.responses.create({ model: MODEL, input: 'hello', stream: true }, withId(created))) events.push(event.type);
      assert.equal(events.at(-1), 'response.completed');
      assertMetered(await usageRecord(gateway, created), USAGE, 'create({stream: true})');

      const sent = upstream.requests.filter((request) => request.path === '/v1/responses');
      assert.equal(sent.length, 2);
      for (const request of sent) {
        assert.equal(request.json!.stream, true);
        assert.equal(request.json!.stream_options, undefined, 'the Responses API rejects stream_options: never added');
        assert.doesNotMatch(request.body.toString('utf8'), /stream_options|include_usage/);
      }
    });

    for (const end of ['incomplete', 'failed'] as const) {
      it(`meters a stream that ends in response.${end} from that event's usage`, async () => {
        upstream.objects.responseEnd = end;
        const id = requestId();
        const events: Array<{ type: string }> = [];
        for await (const event of await sdk(keys.alice!).responses.create({ model: MODEL, input: 'hello', stream: true }, withId(id))) events.push(event);
        assert.equal(events.at(-1)!.type, `response.${end}`);
        const row = await usageRecord(gateway, id);
        assertMetered(row, USAGE, `response.${end}`);
        assert.equal(row.status, 200);
      });
    }
  });

  describe('background responses', () => {
    it('records the usage once, under the creating key, however often the response is retrieved', async () => {
      const client = sdk(keys.alice!);
      const createId = requestId();
      const queued = await client.responses.create({ model: MODEL, input: 'work on this', background: true }, withId(createId));
      assert.equal(queued.status, 'queued');
      const done = await untilFinished(client, queued.id);
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.usage, USAGE);
      for (let i = 0; i < 3; i++) assert.equal((await client.responses.retrieve(queued.id)).status, 'completed');
      await Promise.all(Array.from({ length: 4 }, () => client.responses.retrieve(queued.id)));

      const settled = await settlements(queued.id);
      assert.equal(settled.length, 1, 'one record of the usage, whatever the number of retrieves');
      const row = await usageRecord(gateway, settled[0]!.request_id);
      assertMetered(row, USAGE, 'background');
      assert.equal(row.key_id, keyIds.alice);
      assert.equal(row.key_name, 'alice');

      const create = await usageRecord(gateway, createId);
      assert.equal(create.status, 200);
      assert.equal(create.total_tokens, 0, 'the create is not charged its estimate as if it were final');
      assert.equal(create.usage_source, 'none');
      const retrieves = (await records({ route: `/v1/responses/${queued.id}` })).filter((record) => !record.request_id.endsWith(':usage'));
      assert.ok(retrieves.length >= 8);
      assert.ok(retrieves.every((record) => Number(record.total_tokens) === 0), 'the retrieves themselves carry no tokens');
    });

    it('records the usage a retrieve stream (?stream=true) shows in its terminal event, once', async () => {
      const client = sdk(keys.alice!);
      const queued = await client.responses.create({ model: MODEL, input: 'stream it later', background: true });
      for (let i = 0; i < 2; i++) {
        const events: string[] = [];
        for await (const event of await client.responses.retrieve(queued.id, { stream: true })) events.push(event.type);
        assert.equal(events.at(-1), 'response.completed');
      }
      assert.equal(upstream.last().url, `/v1/responses/${queued.id}?stream=true`);
      const settled = await settlements(queued.id);
      assert.equal(settled.length, 1);
      assertMetered(await usageRecord(gateway, settled[0]!.request_id), USAGE, 'retrieve stream');
    });

    it('records the usage a background stream reaches in response.completed under its own record, and not again on retrieve', async () => {
      const client = sdk(keys.alice!);
      const createId = requestId();
      let id = '';
      for await (const event of await client.responses.create({ model: MODEL, input: 'stream now', background: true, stream: true }, withId(createId))) {
        if (event.type === 'response.created') id = event.response.id;
      }
      assert.notEqual(id, '');
      // The stream's own record is written just after its last event reached the client: wait for it before retrieving.
      const byStream = await settlements(id);
      assert.equal(byStream.length, 1);
      assert.equal(byStream[0]!.request_id, `${createId}:usage`);
      assert.equal((await client.responses.retrieve(id)).status, 'completed');
      const settled = await settlements(id);
      assert.equal(settled.length, 1, 'the retrieve did not record it again');
      assertMetered(await usageRecord(gateway, settled[0]!.request_id), USAGE, 'background stream');
      const create = await usageRecord(gateway, createId);
      assert.equal(create.total_tokens, 0, 'the stream request itself does not carry the tokens too');
    });

    it('charges the creating key when an access token retrieves the response; another key gets 404', async () => {
      const queued = await sdk(keys.alice!).responses.create({ model: MODEL, input: 'mine', background: true });
      const owner = sdk(ACCESS);
      assert.equal((await untilFinished(owner, queued.id)).status, 'completed');
      const bob = sdk(keys.bob!);
      for (const attempt of [() => bob.responses.retrieve(queued.id), () => bob.responses.inputItems.list(queued.id), () => bob.responses.cancel(queued.id)]) {
        await assert.rejects(attempt(), (error: unknown) => error instanceof OpenAI.NotFoundError);
      }
      const settled = await settlements(queued.id);
      assert.equal(settled.length, 1);
      const row = await usageRecord(gateway, settled[0]!.request_id);
      assert.equal(row.key_id, keyIds.alice, 'charged to the key that created it');
      assert.equal(row.key_name, 'alice');
      assertMetered(row, USAGE, 'retrieved by an access token');
      assert.equal((await records({ keyName: 'bob' })).every((record) => Number(record.total_tokens) === 0), true, 'bob is charged nothing');
    });

    it('sends every follow-up to the upstream key that created the response (two keys, one upstream)', async () => {
      const client = sdk(keys.alice!);
      for (let turn = 0; turn < 4; turn++) {
        upstream.reset();
        const queued = await client.responses.create({ model: MODEL, input: `turn ${turn}`, background: true });
        const account = upstream.objects.get(queued.id)!.account;
        assert.equal((await untilFinished(client, queued.id)).status, 'completed');
        assert.ok((await client.responses.inputItems.list(queued.id)).data.length > 0);
        const next = await client.responses.create({ model: MODEL, input: 'go on', previous_response_id: queued.id, background: true });
        assert.equal(upstream.objects.get(next.id)!.account, account, 'the follow-up ran in the same account');
        assert.equal((await client.responses.cancel(next.id)).status, 'cancelled');
        const used = upstream.requests.filter((request) => request.path.startsWith('/v1/responses'));
        assert.ok(used.length >= 5);
        for (const request of used) assert.equal(request.headers.authorization, `Bearer ${account}`, `${request.method} ${request.path} went to the creating key`);
      }
      const accounts = new Set(upstream.objects.list('response').map((stored) => stored.account));
      assert.equal(accounts.size, 2, 'new responses are still spread over both keys');
    });
  });

  describe('limits', () => {
    it('admits background responses to a budget key, and refuses the next request once their recorded usage spent the budget', async () => {
      const client = sdk(keys.spender!);
      const queued = await client.responses.create({ model: MODEL, input: 'spend', background: true });
      assert.equal(queued.status, 'queued', 'admitted: no more 403 for background responses');
      assert.equal((await untilFinished(client, queued.id)).status, 'completed');
      assert.equal((await settlements(queued.id)).length, 1);
      await assert.rejects(client.responses.create({ model: MODEL, input: 'more' }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.RateLimitError, String(error));
        assert.equal(error.code, 'budget_exceeded');
        return true;
      });
    });

    it('holds each background response\'s estimate while it runs, and replaces it by the usage once seen', async () => {
      upstream.objects.responseUsage = SMALL_USAGE;
      const client = sdk(keys.holder!);
      // Each holds its prompt and max_output_tokens: two fit the 1000-token budget, a third does not.
      const first = await client.responses.create({ model: MODEL, input: 'a', max_output_tokens: 400, background: true });
      const second = await client.responses.create({ model: MODEL, input: 'b', max_output_tokens: 400, background: true });
      await assert.rejects(client.responses.create({ model: MODEL, input: 'c', max_output_tokens: 400, background: true }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.RateLimitError, String(error));
        assert.equal(error.code, 'budget_exceeded');
        return true;
      });
      for (const queued of [first, second]) {
        assert.equal((await untilFinished(client, queued.id)).status, 'completed');
        assert.equal((await settlements(queued.id)).length, 1);
      }
      const third = await client.responses.create({ model: MODEL, input: 'c', max_output_tokens: 400, background: true });
      assert.equal(third.status, 'queued', 'the holds were replaced by 30 tokens each: room again');
    });

    it('counts background responses in tpm while they run', async () => {
      const client = sdk(keys.rate!);
      await client.responses.create({ model: MODEL, input: 'a', max_output_tokens: 400, background: true });
      await client.responses.create({ model: MODEL, input: 'b', max_output_tokens: 400, background: true });
      await assert.rejects(client.responses.create({ model: MODEL, input: 'c', max_output_tokens: 400, background: true }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.RateLimitError, String(error));
        assert.equal(error.code, 'rate_limit_exceeded');
        return true;
      });
    });
  });

  describe('two gateway instances on one database', () => {
    let second: TestGateway;
    before(async () => {
      second = await startTestGateway({ BASE_URL: upstream.url, APIKEY: ACCOUNTS.join('|'), ACCESS_TOKEN: ACCESS, DATABASE_URL: database.url, MAX_ATTEMPTS: '1' });
    });
    after(() => second.close());

    it('records a response retrieved concurrently through both exactly once', async () => {
      const viaFirst = sdk(keys.alice!);
      const viaSecond = sdk(keys.alice!, second.url);
      for (let round = 0; round < 3; round++) {
        const queued = await viaFirst.responses.create({ model: MODEL, input: `shared ${round}`, background: true });
        const retrieves = Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? viaFirst : viaSecond).responses.retrieve(queued.id));
        for (const response of await Promise.all(retrieves)) assert.equal(response.id, queued.id);
        assert.equal((await untilFinished(viaSecond, queued.id)).status, 'completed');
        await Promise.all([viaFirst.responses.retrieve(queued.id), viaSecond.responses.retrieve(queued.id)]);
        const settled = await settlements(queued.id, [() => second.gateway.writer.flush()]);
        assert.equal(settled.length, 1, `round ${round}: one record across both instances`);
        assert.equal(Number(settled[0]!.total_tokens), USAGE.total_tokens);
        assert.equal(settled[0]!.key_id, keyIds.alice);
      }
    });
  });
});
