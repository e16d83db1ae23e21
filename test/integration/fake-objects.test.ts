import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { FakeUpstream } from '../helpers/fake-upstream.js';

// The fake upstream's stateful objects, driven directly (no gateway) with the official SDK: the
// gateway's confinement tests rely on these behaving like OpenAI, per account.

const KEY_A = 'sk-account-a';
const KEY_B = 'sk-account-b';

const batchLines = (model: string, n: number): string =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: `line ${i}` }] } })).join('\n');

async function rejectsNotFound(promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof OpenAI.NotFoundError, `${what}: ${String(error)}`);
    return true;
  });
}

describe('fake upstream objects, per account', () => {
  let fake: FakeUpstream;
  let a: OpenAI;
  let b: OpenAI;

  before(async () => {
    fake = await FakeUpstream.start();
    a = new OpenAI({ apiKey: KEY_A, baseURL: fake.url, maxRetries: 0 });
    b = new OpenAI({ apiKey: KEY_B, baseURL: fake.url, maxRetries: 0 });
  });
  after(() => fake.close());
  beforeEach(() => {
    fake.reset();
    fake.objects.reset();
  });

  describe('files', () => {
    it('uploads, lists, retrieves, reads back and deletes a file', async () => {
      const bytes = Buffer.from('{"hello":"world"}\n');
      const file = await a.files.create({ file: await toFile(bytes, 'data.jsonl'), purpose: 'batch' });
      assert.match(file.id, /^file-/);
      assert.equal(file.object, 'file');
      assert.equal(file.bytes, bytes.length);
      assert.equal(file.filename, 'data.jsonl');
      assert.equal(file.purpose, 'batch');
      assert.equal(file.status, 'processed');
      assert.equal(typeof file.created_at, 'number');
      assert.deepEqual((await a.files.retrieve(file.id)).id, file.id);
      assert.deepEqual((await a.files.list()).data.map((f) => f.id), [file.id]);
      assert.deepEqual(Buffer.from(await (await a.files.content(file.id)).arrayBuffer()), bytes);
      assert.deepEqual(fake.objects.get(file.id)?.content, bytes);
      assert.equal(fake.objects.get(file.id)?.account, KEY_A);
      assert.deepEqual(await a.files.delete(file.id), { id: file.id, object: 'file', deleted: true });
      await rejectsNotFound(a.files.retrieve(file.id), 'deleted file');
      assert.equal(fake.objects.count('file'), 0);
    });

    it('pages newest first with limit and after, and the SDK auto-paginates all of them', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await a.files.create({ file: await toFile(Buffer.from(`file ${i}`), `f${i}.txt`), purpose: i % 2 ? 'assistants' : 'batch' })).id);
      fake.reset();
      const seen: string[] = [];
      for await (const file of a.files.list({ limit: 2 })) seen.push(file.id);
      assert.deepEqual(seen, [...ids].reverse());
      assert.deepEqual(fake.requests.map((r) => r.url), ['/v1/files?limit=2', `/v1/files?limit=2&after=${ids[3]}`, `/v1/files?limit=2&after=${ids[1]}`]);
      const first = await a.files.list({ limit: 2 });
      assert.equal(first.has_more, true);
      assert.deepEqual((await a.files.list({ order: 'asc', limit: 3 })).data.map((f) => f.id), ids.slice(0, 3));
      assert.deepEqual((await a.files.list({ purpose: 'batch' })).data.map((f) => f.id), [ids[4], ids[2], ids[0]]);
      const backwards = (await (await fetch(`${fake.url}/files?before=${ids[1]}&limit=2`, { headers: { authorization: `Bearer ${KEY_A}` } })).json()) as { data: Array<{ id: string }>; has_more: boolean };
      assert.deepEqual(backwards.data.map((f) => f.id), [ids[3], ids[2]], '`before` pages back from the cursor');
      assert.equal(backwards.has_more, true);
    });

    it('answers an unknown id with OpenAI’s error body', async () => {
      const response = await fetch(`${fake.url}/files/file-nope`, { headers: { authorization: `Bearer ${KEY_A}` } });
      assert.equal(response.status, 404);
      assert.deepEqual(await response.json(), { error: { message: 'No such File object: file-nope', type: 'invalid_request_error', param: 'id', code: null } });
    });
  });

  describe('batches', () => {
    it('creates a batch on an uploaded file; the first retrieve completes it with an output file', async () => {
      const input = await a.files.create({ file: await toFile(Buffer.from(batchLines('gpt-4o-mini', 2)), 'batch.jsonl'), purpose: 'batch' });
      const batch = await a.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      assert.match(batch.id, /^batch_/);
      assert.equal(batch.object, 'batch');
      assert.equal(batch.status, 'validating');
      assert.equal(batch.input_file_id, input.id);
      const done = await a.batches.retrieve(batch.id);
      assert.equal(done.status, 'completed');
      assert.equal(done.model, 'gpt-4o-mini');
      assert.deepEqual(done.request_counts, { total: 2, completed: 2, failed: 0 });
      const output = await a.files.retrieve(done.output_file_id!);
      assert.equal(output.purpose, 'batch_output');
      const lines = (await (await a.files.content(output.id)).text()).trim().split('\n').map((line) => JSON.parse(line) as { custom_id: string; response: { status_code: number; body: { choices: Array<{ message: { content: string } }> } } });
      assert.deepEqual(lines.map((line) => line.custom_id), ['req-0', 'req-1']);
      assert.equal(lines[0]!.response.body.choices[0]!.message.content, fake.replyText);
      assert.equal(fake.objects.get(output.id)?.account, KEY_A, 'the output file belongs to the batch’s account');
      assert.deepEqual((await a.batches.list()).data.map((x) => x.id), [batch.id]);
    });

    it('cancels a batch, and fails one whose lines do not match its endpoint', async () => {
      const input = await a.files.create({ file: await toFile(Buffer.from(batchLines('gpt-4o', 1)), 'batch.jsonl'), purpose: 'batch' });
      const cancelled = await a.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      assert.equal((await a.batches.cancel(cancelled.id)).status, 'cancelling');
      assert.equal((await a.batches.retrieve(cancelled.id)).status, 'cancelled');
      const wrong = await a.batches.create({ input_file_id: input.id, endpoint: '/v1/embeddings', completion_window: '24h' });
      const failed = await a.batches.retrieve(wrong.id);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.errors?.data?.[0]?.line, 1);
    });

    it('refuses an input file unknown in the account with 404', async () => {
      await rejectsNotFound(a.batches.create({ input_file_id: 'file-missing', endpoint: '/v1/chat/completions', completion_window: '24h' }), 'unknown input file');
      assert.equal(fake.objects.count('batch'), 0);
    });
  });

  describe('responses', () => {
    it('creates, retrieves, chains with previous_response_id, lists input items and deletes', async () => {
      const first = await a.responses.create({ model: 'gpt-4o-mini', input: 'Hi there' });
      assert.match(first.id, /^resp_/);
      assert.equal(first.object, 'response');
      assert.equal(first.status, 'completed');
      assert.equal(first.output_text, fake.replyText);
      assert.deepEqual(first.usage, { input_tokens: 12, input_tokens_details: { cached_tokens: 0 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 17 });
      assert.equal((await a.responses.retrieve(first.id)).output_text, fake.replyText);
      const second = await a.responses.create({ model: 'gpt-4o-mini', input: [{ role: 'user', content: 'And then?' }], previous_response_id: first.id });
      assert.equal(second.previous_response_id, first.id);
      const items = await a.responses.inputItems.list(second.id);
      assert.deepEqual(items.data.map((item) => item.type === 'message' && item.content), [[{ type: 'input_text', text: 'And then?' }]]);
      assert.deepEqual(await a.responses.delete(first.id), { id: first.id, object: 'response.deleted', deleted: true });
      await rejectsNotFound(a.responses.retrieve(first.id), 'deleted response');
      await assert.rejects(a.responses.create({ model: 'gpt-4o-mini', input: 'x', previous_response_id: first.id }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.NotFoundError);
        assert.equal(error.code, 'previous_response_not_found');
        assert.equal(error.param, 'previous_response_id');
        assert.equal(error.message, `404 Previous response with id '${first.id}' not found.`);
        return true;
      });
    });

    it('does not keep a response made with store: false', async () => {
      const response = await a.responses.create({ model: 'gpt-4o-mini', input: 'x', store: false });
      await rejectsNotFound(a.responses.retrieve(response.id), 'unstored response');
      assert.equal(fake.objects.count('response'), 0);
    });

    it('streams the event sequence the SDK’s stream helper accepts, and keeps the result', async () => {
      const stream = a.responses.stream({ model: 'gpt-4o-mini', input: 'Stream please' });
      const types: string[] = [];
      let text = '';
      for await (const event of stream) {
        types.push(event.type);
        if (event.type === 'response.output_text.delta') text += event.delta;
      }
      const final = await stream.finalResponse();
      assert.deepEqual(types.filter((type, i) => type !== types[i - 1]), [
        'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
        'response.output_text.delta', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed',
      ]);
      assert.ok(types.filter((type) => type === 'response.output_text.delta').length > 1);
      assert.equal(text, fake.replyText);
      assert.equal(final.output_text, fake.replyText);
      assert.equal(final.usage?.total_tokens, 17);
      assert.equal((await a.responses.retrieve(final.id)).status, 'completed');
    });

    it('frames stream events as named SSE events with type and sequence_number', async () => {
      const response = await fetch(`${fake.url}/responses`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o-mini', input: 'x', stream: true }) });
      assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
      const blocks = (await response.text()).split('\n\n').filter(Boolean);
      blocks.forEach((block, index) => {
        const [eventLine, dataLine] = block.split('\n');
        const data = JSON.parse(dataLine!.replace(/^data: /, '')) as { type: string; sequence_number: number };
        assert.equal(eventLine, `event: ${data.type}`);
        assert.equal(data.sequence_number, index);
      });
      assert.equal(blocks.length, 9 + fake.replyText.split(' ').length - 1);
      const completed = JSON.parse(blocks.at(-1)!.split('\n')[1]!.slice(6)) as { response: { usage: { total_tokens: number } } };
      assert.equal(completed.response.usage.total_tokens, 17);
    });

    it('queues a background response that the first retrieve finds completed; cancels another', async () => {
      const queued = await a.responses.create({ model: 'gpt-4o-mini', input: 'later', background: true });
      assert.equal(queued.status, 'queued');
      assert.equal(queued.usage, null);
      const done = await a.responses.retrieve(queued.id);
      assert.equal(done.status, 'completed');
      assert.equal(done.output_text, fake.replyText);
      assert.equal(done.usage?.output_tokens, 5);
      const other = await a.responses.create({ model: 'gpt-4o-mini', input: 'never', background: true });
      assert.equal((await a.responses.cancel(other.id)).status, 'cancelled');
      assert.equal((await a.responses.retrieve(other.id)).status, 'cancelled');
    });
  });

  describe('vector stores', () => {
    it('creates a store on files, attaches another, lists, updates and deletes', async () => {
      const one = await a.files.create({ file: await toFile(Buffer.from('alpha'), 'one.txt'), purpose: 'assistants' });
      const two = await a.files.create({ file: await toFile(Buffer.from('beta!'), 'two.txt'), purpose: 'assistants' });
      const store = await a.vectorStores.create({ name: 'docs', file_ids: [one.id] });
      assert.match(store.id, /^vs_/);
      assert.equal(store.object, 'vector_store');
      assert.equal(store.file_counts.total, 1);
      const attached = await a.vectorStores.files.create(store.id, { file_id: two.id });
      assert.equal(attached.object, 'vector_store.file');
      assert.equal(attached.vector_store_id, store.id);
      assert.deepEqual((await a.vectorStores.files.list(store.id)).data.map((f) => f.id), [two.id, one.id]);
      assert.equal((await a.vectorStores.retrieve(store.id)).usage_bytes, 10);
      assert.equal((await a.vectorStores.update(store.id, { name: 'renamed' })).name, 'renamed');
      assert.deepEqual((await a.vectorStores.list()).data.map((s) => s.name), ['renamed']);
      assert.equal(fake.objects.get(`${store.id}/${two.id}`)?.kind, 'vector_store.file');
      assert.deepEqual(await a.vectorStores.delete(store.id), { id: store.id, object: 'vector_store.deleted', deleted: true });
      assert.equal(fake.objects.count('vector_store.file'), 0);
    });

    it('refuses a file unknown in the account with 404', async () => {
      await rejectsNotFound(a.vectorStores.create({ name: 'x', file_ids: ['file-missing'] }), 'unknown file');
      assert.equal(fake.objects.count('vector_store'), 0);
    });
  });

  describe('stored chat completions', () => {
    it('keeps completions made with store: true under unique ids; others keep the fixed id', async () => {
      const plain = await a.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(plain.id, 'chatcmpl-fake1');
      assert.equal(fake.objects.count('chat.completion'), 0);
      const one = await a.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one' }], store: true, metadata: { topic: 'x' } });
      const two = await a.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'two' }], store: true, stream: true });
      let streamedId = '';
      for await (const chunk of two) streamedId = chunk.id;
      assert.notEqual(one.id, 'chatcmpl-fake1');
      assert.notEqual(one.id, streamedId);
      assert.equal((await a.chat.completions.retrieve(streamedId)).model, 'gpt-4o');
      assert.deepEqual((await a.chat.completions.list()).data.map((c) => c.id), [one.id, streamedId]);
      assert.deepEqual((await a.chat.completions.list({ model: 'gpt-4o' })).data.map((c) => c.id), [streamedId]);
      assert.deepEqual((await a.chat.completions.list({ metadata: { topic: 'x' } })).data.map((c) => c.id), [one.id]);
      assert.deepEqual((await a.chat.completions.messages.list(one.id)).data.map((m) => m.content), ['one']);
      assert.deepEqual((await a.chat.completions.update(one.id, { metadata: { topic: 'y' } })).metadata, { topic: 'y' });
      assert.deepEqual(await a.chat.completions.delete(one.id), { id: one.id, object: 'chat.completion.deleted', deleted: true });
      await rejectsNotFound(a.chat.completions.retrieve(one.id), 'deleted completion');
    });
  });

  describe('confinement between accounts', () => {
    it('hides every object of account A from account B: 404 on each id, empty lists, no chaining', async () => {
      const file = await a.files.create({ file: await toFile(Buffer.from(batchLines('gpt-4o-mini', 1)), 'a.jsonl'), purpose: 'batch' });
      const batch = await a.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      const response = await a.responses.create({ model: 'gpt-4o-mini', input: 'A only' });
      const store = await a.vectorStores.create({ name: 'A', file_ids: [file.id] });
      const completion = await a.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'A' }], store: true });

      await rejectsNotFound(b.files.retrieve(file.id), 'file');
      await rejectsNotFound(b.files.content(file.id), 'file content');
      await rejectsNotFound(b.files.delete(file.id), 'file delete');
      await rejectsNotFound(b.batches.retrieve(batch.id), 'batch');
      await rejectsNotFound(b.batches.cancel(batch.id), 'batch cancel');
      await rejectsNotFound(b.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }), 'batch on A’s file');
      await rejectsNotFound(b.responses.retrieve(response.id), 'response');
      await rejectsNotFound(b.responses.delete(response.id), 'response delete');
      await rejectsNotFound(b.responses.inputItems.list(response.id), 'input items');
      await rejectsNotFound(b.responses.create({ model: 'gpt-4o-mini', input: 'x', previous_response_id: response.id }), 'previous_response_id');
      await rejectsNotFound(b.vectorStores.retrieve(store.id), 'vector store');
      await rejectsNotFound(b.vectorStores.files.list(store.id), 'vector store files');
      await rejectsNotFound(b.vectorStores.create({ name: 'B', file_ids: [file.id] }), 'vector store on A’s file');
      await rejectsNotFound(b.chat.completions.retrieve(completion.id), 'stored completion');
      await rejectsNotFound(b.chat.completions.delete(completion.id), 'stored completion delete');

      assert.deepEqual((await b.files.list()).data, []);
      assert.deepEqual((await b.batches.list()).data, []);
      assert.deepEqual((await b.vectorStores.list()).data, []);
      assert.deepEqual((await b.chat.completions.list()).data, []);
      assert.equal(fake.objects.count(undefined, KEY_B), 0);

      assert.equal((await a.files.retrieve(file.id)).id, file.id, 'B’s failed delete left A’s file');
      assert.equal((await a.responses.retrieve(response.id)).id, response.id);
      assert.equal((await a.chat.completions.retrieve(completion.id)).id, completion.id);
      assert.equal(fake.objects.count(undefined, KEY_A), 6, 'file, batch, response, vector store, its file, completion');
    });

    it('gives B a 400 for a cursor naming A’s object, not A’s page', async () => {
      const file = await a.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'batch' });
      await assert.rejects(b.files.list({ after: file.id }), (error: unknown) => error instanceof OpenAI.BadRequestError);
    });
  });

  it('keeps objects across FakeUpstream.reset(); objects.reset() clears them', async () => {
    await a.responses.create({ model: 'gpt-4o-mini', input: 'x' });
    fake.reset();
    assert.equal(fake.objects.count('response'), 1);
    fake.objects.reset();
    assert.equal(fake.objects.count(), 0);
  });
});
