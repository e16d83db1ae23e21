import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setImmediate as nextLoop } from 'node:timers/promises';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GatewayError } from '../../../src/errors/index.js';
import { readMultipartModel, type MultipartModel } from '../../../src/http/multipart-model.js';

const OPTIONS = { limit: 32 * 1024 * 1024, maxModelBytes: 256 };
const MB = 1024 * 1024;

interface Form {
  bytes: Buffer;
  contentType: string;
}

/** Real multipart bytes, as an SDK or a browser would send them (undici's FormData encoder). */
async function multipart(build: (form: FormData) => void): Promise<Form> {
  const form = new FormData();
  build(form);
  const response = new Response(form);
  return { bytes: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type')! };
}

/** A hand-written form, for what FormData cannot express. */
function rawForm(parts: string[], boundary = 'b0undary'): Form {
  const body = parts.map((part) => `--${boundary}\r\n${part}\r\n`).join('') + `--${boundary}--\r\n`;
  return { bytes: Buffer.from(body, 'latin1'), contentType: `multipart/form-data; boundary=${boundary}` };
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Cuts `bytes` at the given sizes (cycled), without copying. */
function split(bytes: Buffer, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length]!);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** A source that hands out `chunks` only when read, counting how many were taken. */
class ChunkSource extends Readable {
  pulled = 0;

  constructor(
    private readonly chunks: Buffer[],
    private readonly ending: 'end' | Error | 'close' = 'end',
  ) {
    super();
  }

  override _read(): void {
    if (this.pulled < this.chunks.length) {
      this.push(this.chunks[this.pulled++]);
      return;
    }
    if (this.ending === 'end') this.push(null);
    else if (this.ending === 'close') this.destroy();
    else this.destroy(this.ending);
  }
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function refusal(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GatewayError, `expected a GatewayError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a refusal');
}

/**
 * Runs a whole upload: the model, and the replayed body. A problem found after the answer fails
 * the body instead of the answer, so a refusal can come from either.
 */
async function upload(form: Form, chunks: Buffer[], options = OPTIONS): Promise<{ model?: string | undefined; replay?: Buffer; error?: GatewayError; delivered: number }> {
  let answer: MultipartModel;
  try {
    answer = await readMultipartModel(new ChunkSource(chunks), form.contentType, options);
  } catch (error) {
    assert.ok(error instanceof GatewayError, `expected a GatewayError, got ${String(error)}`);
    return { error, delivered: 0 };
  }
  let delivered = 0;
  const received: Buffer[] = [];
  try {
    for await (const chunk of answer.body) {
      received.push(chunk as Buffer);
      delivered += (chunk as Buffer).length;
    }
  } catch (error) {
    assert.ok(error instanceof GatewayError, `expected a GatewayError, got ${String(error)}`);
    return { model: answer.model, error, delivered };
  }
  return { model: answer.model, replay: Buffer.concat(received), delivered };
}

describe('readMultipartModel: where the field is', () => {
  it('reads a model sent before the file and replays the body byte for byte', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('file', new Blob([randomBytes(64 * 1024)]), 'speech.mp3');
      f.append('language', 'en');
    });
    const result = await upload(form, split(form.bytes, [16 * 1024]));
    assert.equal(result.model, 'whisper-1');
    assert.equal(sha256(result.replay!), sha256(form.bytes));
  });

  it('reads a model sent after a 5 MB file, as SDKs send it', async () => {
    const form = await multipart((f) => {
      f.append('file', new Blob([randomBytes(5 * MB)]), 'speech.wav');
      f.append('model', 'gpt-4o-transcribe');
      f.append('response_format', 'json');
    });
    const result = await upload(form, split(form.bytes, [64 * 1024]));
    assert.equal(result.model, 'gpt-4o-transcribe');
    assert.equal(result.replay!.length, form.bytes.length);
    assert.equal(sha256(result.replay!), sha256(form.bytes));
  });

  it('answers undefined when the form has no model field, and still replays every byte', async () => {
    const form = await multipart((f) => {
      f.append('file', new Blob([randomBytes(100_000)]), 'image.png');
      f.append('prompt', 'a cat');
    });
    const result = await upload(form, split(form.bytes, [7000]));
    assert.equal(result.error, undefined);
    assert.equal(result.model, undefined);
    assert.equal(sha256(result.replay!), sha256(form.bytes));
  });

  it('resolves as soon as the field is read, before the rest of a large upload arrives', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('file', new Blob([randomBytes(4 * MB)]), 'speech.mp3');
    });
    const source = new ChunkSource(split(form.bytes, [64 * 1024]));
    const { model, body } = await readMultipartModel(source, form.contentType, OPTIONS);
    assert.equal(model, 'whisper-1');
    assert.ok(source.pulled <= 4, `read ${source.pulled} chunks of 64 KiB before answering`);
    assert.equal(sha256(await readAll(body)), sha256(form.bytes));
  });

  it('reads a model that is empty, multi-byte or exactly the maximum length', async () => {
    for (const model of ['', 'modèle-😀', 'm'.repeat(256), 'é'.repeat(128)]) {
      const form = await multipart((f) => f.append('model', model));
      const result = await upload(form, [form.bytes]);
      assert.equal(result.model, model);
      assert.deepEqual(result.replay, form.bytes);
    }
  });

  it('keeps a byte-order mark rather than silently dropping it', async () => {
    const form = rawForm(['Content-Disposition: form-data; name="model"\r\n\r\n\u00ef\u00bb\u00bfgpt-4o']);
    const result = await upload(form, [form.bytes]);
    assert.equal(result.model, '\ufeffgpt-4o');
  });

  it('ignores other parts whatever their name looks like', async () => {
    const form = await multipart((f) => {
      f.append('models', 'gpt-4o');
      f.append('Model', 'gpt-4o');
      f.append('model[]', 'gpt-4o');
      f.append('model', 'whisper-1');
    });
    assert.equal((await upload(form, [form.bytes])).model, 'whisper-1');
  });
});

describe('readMultipartModel: refusals', () => {
  it('refuses a second model field, before or after the answer, and never delivers the whole body', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('file', new Blob([randomBytes(200_000)]), 'speech.mp3');
      f.append('model', 'gpt-4o-transcribe');
    });
    for (const sizes of [[form.bytes.length], [1000], [64 * 1024], [1, 7, 300]]) {
      const result = await upload(form, split(form.bytes, sizes));
      assert.equal(result.error?.code, 'invalid_request', `chunks of ${sizes.join(',')}`);
      assert.match(result.error.message, /"model" field appears more than once/);
      assert.equal(result.replay, undefined);
      assert.ok(result.delivered < form.bytes.length, 'the upstream must not receive the whole body');
    }
  });

  it('refuses a second model field even when both sit in the first chunk', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('model', 'gpt-4o-transcribe');
    });
    const error = await refusal(readMultipartModel(new ChunkSource([form.bytes]), form.contentType, OPTIONS));
    assert.equal(error.code, 'invalid_request');
  });

  it('refuses a model sent as a file part', async () => {
    const form = await multipart((f) => f.append('model', new Blob(['whisper-1']), 'model.txt'));
    const error = await refusal(readMultipartModel(new ChunkSource([form.bytes]), form.contentType, OPTIONS));
    assert.equal(error.code, 'invalid_request');
    assert.equal(error.param, 'model');
    assert.match(error.message, /is a file part/);
    // An empty filename is still a filename: the upstream treats the part as an upload.
    const empty = rawForm(['Content-Disposition: form-data; name="model"; filename=""\r\n\r\nwhisper-1']);
    assert.match((await upload(empty, [empty.bytes])).error!.message, /is a file part/);
  });

  it('refuses a model longer than maxModelBytes, counted in bytes', async () => {
    for (const model of ['m'.repeat(257), 'é'.repeat(129)]) {
      const form = await multipart((f) => {
        f.append('model', model);
        f.append('file', new Blob([randomBytes(1000)]), 'a.mp3');
      });
      const result = await upload(form, split(form.bytes, [100]));
      assert.equal(result.error?.code, 'invalid_request');
      assert.match(result.error.message, /longer than 256 bytes/);
    }
  });

  it('refuses with body_too_large when the bytes before the field pass the limit', async () => {
    const form = await multipart((f) => {
      f.append('file', new Blob([randomBytes(2 * MB)]), 'speech.wav');
      f.append('model', 'whisper-1');
    });
    const error = await refusal(readMultipartModel(new ChunkSource(split(form.bytes, [64 * 1024])), form.contentType, { limit: MB, maxModelBytes: 256 }));
    assert.equal(error.code, 'body_too_large');
    assert.equal(error.status, 413);
  });

  it('holds no more than the limit: a body larger than it passes once the field is known', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('file', new Blob([randomBytes(2 * MB)]), 'speech.wav');
    });
    const result = await upload(form, split(form.bytes, [64 * 1024]), { limit: MB, maxModelBytes: 256 });
    assert.equal(result.model, 'whisper-1');
    assert.equal(sha256(result.replay!), sha256(form.bytes));
  });

  it('refuses a model part whose transfer encoding would change its value upstream', async () => {
    const form = rawForm(['Content-Disposition: form-data; name="model"\r\nContent-Transfer-Encoding: base64\r\n\r\nZ3B0LTRv']);
    const result = await upload(form, [form.bytes]);
    assert.equal(result.error?.code, 'invalid_request');
    assert.match(result.error.message, /Content-Transfer-Encoding "base64"/);
    const plain = rawForm(['Content-Disposition: form-data; name="model"\r\nContent-Transfer-Encoding: 8bit\r\n\r\ngpt-4o']);
    assert.equal((await upload(plain, [plain.bytes])).model, 'gpt-4o');
  });

  it('refuses a model that is not valid UTF-8', async () => {
    const form = rawForm(['Content-Disposition: form-data; name="model"\r\n\r\ngpt-\u00ff4o']);
    const result = await upload(form, [form.bytes]);
    assert.match(result.error!.message, /not valid UTF-8/);
  });

  it('refuses a Content-Type without a boundary, and one that is not multipart', async () => {
    const form = await multipart((f) => f.append('model', 'whisper-1'));
    const missing = await refusal(readMultipartModel(new ChunkSource([form.bytes]), 'multipart/form-data', OPTIONS));
    assert.equal(missing.code, 'invalid_request');
    assert.match(missing.message, /no boundary/);
    const other = await refusal(readMultipartModel(new ChunkSource([form.bytes]), 'application/x-www-form-urlencoded', OPTIONS));
    assert.equal(other.code, 'invalid_content_type');
  });

  it('refuses a malformed body: garbage, empty, or cut before its end', async () => {
    const form = await multipart((f) => {
      f.append('file', new Blob([randomBytes(10_000)]), 'a.mp3');
      f.append('model', 'whisper-1');
    });
    for (const bytes of [Buffer.from('model=whisper-1'), Buffer.alloc(0), form.bytes.subarray(0, 5000)]) {
      const result = await upload({ bytes, contentType: form.contentType }, bytes.length === 0 ? [] : split(bytes, [1000]));
      assert.equal(result.error?.code, 'invalid_request', JSON.stringify(bytes.subarray(0, 20).toString('latin1')));
      assert.match(result.error.message, /multipart body is malformed/);
    }
  });

  it('fails the body when the form is cut after the model was read', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('file', new Blob([randomBytes(10_000)]), 'a.mp3');
    });
    const result = await upload({ bytes: form.bytes.subarray(0, 6000), contentType: form.contentType }, split(form.bytes.subarray(0, 6000), [1000]));
    assert.equal(result.model, 'whisper-1');
    assert.equal(result.error?.code, 'invalid_request');
    assert.match(result.error.message, /malformed/);
  });
});

describe('readMultipartModel: the source', () => {
  const twoParts = (): Promise<Form> =>
    multipart((f) => {
      f.append('file', new Blob([randomBytes(100_000)]), 'speech.mp3');
      f.append('model', 'whisper-1');
    });

  it('rejects when the source errors before the field', async () => {
    const form = await twoParts();
    const source = new ChunkSource(split(form.bytes, [10_000]).slice(0, 3), new Error('socket hang up'));
    const error = await refusal(readMultipartModel(source, form.contentType, OPTIONS));
    assert.equal(error.code, 'invalid_request');
    assert.match(error.message, /closed the connection/);
  });

  it('rejects when the source is destroyed (the client aborted) before the field', async () => {
    const form = await twoParts();
    const source = new ChunkSource(split(form.bytes, [10_000]).slice(0, 3), 'close');
    const error = await refusal(readMultipartModel(source, form.contentType, OPTIONS));
    assert.equal(error.code, 'invalid_request');
  });

  it('passes on a GatewayError the source fails with (a byte limit in front of it)', async () => {
    const form = await twoParts();
    const source = new ChunkSource(split(form.bytes, [10_000]).slice(0, 3), new GatewayError('body_too_large', 'too large'));
    assert.equal((await refusal(readMultipartModel(source, form.contentType, OPTIONS))).code, 'body_too_large');
  });

  it('fails the body when the source aborts after the answer', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('file', new Blob([randomBytes(100_000)]), 'speech.mp3');
    });
    const source = new ChunkSource(split(form.bytes, [10_000]).slice(0, 5), new Error('aborted'));
    const { model, body } = await readMultipartModel(source, form.contentType, OPTIONS);
    assert.equal(model, 'whisper-1');
    const error = await refusal(readAll(body));
    assert.equal(error.code, 'invalid_request');
  });

  it('keeps a failure found before anyone reads the body for its first read, instead of crashing', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('file', new Blob([randomBytes(100_000)]), 'speech.mp3');
    });
    const source = new Readable({ read: () => undefined });
    source.push(form.bytes.subarray(0, 2000));
    const { model, body } = await readMultipartModel(source, form.contentType, OPTIONS);
    assert.equal(model, 'whisper-1');
    // The caller is busy elsewhere (admission, a database) while the client goes away.
    source.destroy(new Error('aborted'));
    for (let i = 0; i < 10; i++) await nextLoop();
    assert.equal(body.destroyed, false);
    const error = await refusal(readAll(body));
    assert.equal(error.code, 'invalid_request');
  });

  it('refuses a source that was already consumed', async () => {
    const form = await twoParts();
    const source = Readable.from([form.bytes]);
    await readAll(source);
    assert.equal((await refusal(readMultipartModel(source, form.contentType, OPTIONS))).code, 'invalid_request');
  });

  it('replays the very chunks it was given: no copy, no re-slicing', async () => {
    const form = await twoParts();
    const chunks = split(form.bytes, [3000, 17, 40_000]);
    const { body } = await readMultipartModel(new ChunkSource(chunks), form.contentType, OPTIONS);
    // Flowing mode hands out each pushed chunk as is (`read()` would concatenate what is buffered).
    const received: Buffer[] = [];
    body.on('data', (chunk: Buffer) => received.push(chunk));
    await new Promise((resolve) => body.on('end', resolve));
    assert.equal(received.length, chunks.length);
    received.forEach((chunk, i) => assert.ok(chunk === chunks[i], `chunk ${i} was copied`));
  });

  it('respects backpressure: a reader that stops stops the source', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('file', new Blob([randomBytes(4 * MB)]), 'speech.mp3');
    });
    const chunks = split(form.bytes, [64 * 1024]);
    const source = new ChunkSource(chunks);
    const { body } = await readMultipartModel(source, form.contentType, OPTIONS);
    for (let i = 0; i < 20; i++) await nextLoop();
    const idle = source.pulled;
    assert.ok(idle <= 6, `read ${idle} of ${chunks.length} chunks with nobody reading the body`);
    const first = body.read() as Buffer;
    for (let i = 0; i < 20; i++) await nextLoop();
    assert.ok(source.pulled <= idle + 4, `one read pulled ${source.pulled - idle} chunks`);
    assert.equal(sha256(Buffer.concat([first, await readAll(body)])), sha256(form.bytes));
  });

  it('stops reading and drains the source when the body is destroyed', async () => {
    const form = await multipart((f) => {
      f.append('model', 'whisper-1');
      f.append('file', new Blob([randomBytes(1 * MB)]), 'speech.mp3');
    });
    const chunks = split(form.bytes, [64 * 1024]);
    const source = new ChunkSource(chunks);
    const { body } = await readMultipartModel(source, form.contentType, OPTIONS);
    body.destroy();
    await new Promise((resolve) => source.once('end', resolve));
    assert.equal(source.pulled, chunks.length);
    assert.equal(source.destroyed, true, 'ended normally, not torn down');
  });
});

describe('readMultipartModel properties', () => {
  const fieldName = fc.constantFrom('prompt', 'language', 'response_format', 'temperature', 'n', 'size', 'modelo', 'timestamp_granularities[]');
  const part = fc.oneof(
    fc.record({ kind: fc.constant('field' as const), name: fieldName, value: fc.string({ maxLength: 40 }) }),
    fc.record({ kind: fc.constant('file' as const), name: fc.constantFrom('file', 'image', 'mask'), size: fc.nat({ max: 150_000 }) }),
  );
  const formArb = fc.record({
    parts: fc.array(part, { maxLength: 5 }),
    model: fc.option(fc.string({ unit: 'grapheme', maxLength: 30 }), { nil: undefined }),
    modelAt: fc.nat(),
    sizes: fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 }),
    tiny: fc.boolean(),
  });

  it('any split of any form gives the same model and the exact bytes back', async () => {
    await fc.assert(
      fc.asyncProperty(formArb, async ({ parts, model, modelAt, sizes, tiny }) => {
        const form = await multipart((f) => {
          const entries = parts.map((p) => (): void => {
            if (p.kind === 'field') f.append(p.name, p.value);
            else f.append(p.name, new Blob([randomBytes(p.size)]), `${p.name}.bin`);
          });
          if (model !== undefined) entries.splice(modelAt % (entries.length + 1), 0, () => f.append('model', model));
          for (const append of entries) append();
        });
        // Small chunks from time to time, so headers and boundaries fall across every cut.
        const chunks = split(form.bytes, tiny ? sizes.map((s) => 1 + (s % 13)) : sizes);
        const result = await upload(form, chunks);
        assert.equal(result.error, undefined, result.error?.message);
        assert.equal(result.model, model);
        assert.equal(sha256(result.replay!), sha256(form.bytes));
      }),
      { numRuns: 120 },
    );
  });

  it('1-byte chunks everywhere give the same answer', async () => {
    const form = await multipart((f) => {
      f.append('prompt', 'a cat\r\n--not-a-boundary');
      f.append('image', new Blob([randomBytes(3000)]), 'image.png');
      f.append('model', 'dall-e-2');
      f.append('size', '256x256');
    });
    const result = await upload(form, split(form.bytes, [1]));
    assert.equal(result.model, 'dall-e-2');
    assert.deepEqual(result.replay, form.bytes);
  });
});

describe('readMultipartModel over real HTTP', () => {
  /** A server that reads the model, relays the body into a hash and answers both, or the refusal. */
  async function start(): Promise<{ server: Server; url: string }> {
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
      const answer = (status: number, payload: unknown): void => {
        response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
      };
      readMultipartModel(request, request.headers['content-type'] ?? '', { limit: 8 * MB, maxModelBytes: 256 })
        .then(async ({ model, body }) => answer(200, { model, sha256: sha256(await readAll(body)) }))
        .catch((error: GatewayError) => answer(error.status, { code: error.code, message: error.message }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/audio/transcriptions` };
  }

  it('reads the model of an upload sent by fetch, file first, and relays the exact bytes', async () => {
    const { server, url } = await start();
    try {
      const form = await multipart((f) => {
        f.append('file', new Blob([randomBytes(3 * MB)]), 'speech.wav');
        f.append('model', 'whisper-1');
      });
      const response = await fetch(url, { method: 'POST', body: form.bytes, headers: { 'content-type': form.contentType } });
      assert.deepEqual(await response.json(), { model: 'whisper-1', sha256: sha256(form.bytes) });
    } finally {
      server.close();
    }
  });

  it('answers a refusal on the same connection while the client is still uploading', async () => {
    const { server, url } = await start();
    try {
      const form = await multipart((f) => {
        f.append('model', 'whisper-1');
        f.append('file', new Blob([randomBytes(2 * MB)]), 'speech.wav');
        f.append('model', 'gpt-4o-transcribe');
      });
      const response = await fetch(url, { method: 'POST', body: form.bytes, headers: { 'content-type': form.contentType } });
      assert.equal(response.status, 400);
      assert.match(((await response.json()) as { message: string }).message, /appears more than once/);
      const tooLarge = await multipart((f) => {
        f.append('file', new Blob([randomBytes(9 * MB)]), 'speech.wav');
        f.append('model', 'whisper-1');
      });
      const refused = await fetch(url, { method: 'POST', body: tooLarge.bytes, headers: { 'content-type': tooLarge.contentType } });
      assert.equal(refused.status, 413);
    } finally {
      server.close();
    }
  });
});
