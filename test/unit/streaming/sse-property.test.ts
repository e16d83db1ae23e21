import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SseDecoder } from '../../../src/streaming/sse-decoder.js';
import { SseUsageTap } from '../../../src/streaming/sse-usage-tap.js';

// Streams are built from blocks whose decoded form is known, then cut into arbitrary chunks.

type Ending = '\n' | '\r\n' | '\r';

interface Block {
  lines: string[];
  /** The event the decoder must return for this block, if any. */
  expected?: { event: string | undefined; data: string };
  isUsage?: boolean;
}

interface GeneratedStream {
  bytes: Buffer;
  expected: { event: string | undefined; data: string }[];
  /** Byte range of the usage event, which drop mode must remove. */
  usageRange: [number, number] | undefined;
}

const ending = fc.constantFrom<Ending>('\n', '\r\n', '\r');
// Any code point (multi-byte ones included); a line cannot hold CR or LF.
const lineText = fc.string({ unit: 'binary', maxLength: 24 }).map((s) => s.replace(/[\r\n]/g, '_'));
const eventName = fc.constantFrom('message', 'ping', 'response.output_text.delta', 'événement');

const dataBlock = fc
  .record({
    name: fc.option(eventName, { nil: undefined }),
    data: fc.array(lineText, { minLength: 1, maxLength: 3 }),
    comment: fc.option(lineText, { nil: undefined }),
  })
  .map(({ name, data, comment }): Block => {
    const lines = [...(name === undefined ? [] : [`event: ${name}`]), ...data.map((d) => `data: ${d}`)];
    // A comment after the first field line belongs inside the event.
    if (comment !== undefined) lines.splice(1, 0, `:${comment}`);
    return { lines, expected: { event: name, data: data.join('\n') } };
  });

const chatBlock = lineText.map((text): Block => {
  const data = JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: text }, finish_reason: null }], usage: null });
  return { lines: [`data: ${data}`], expected: { event: undefined, data } };
});

const commentBlock = lineText.map((text): Block => ({ lines: [`:${text}`] }));
const dataLessBlock = fc.constantFrom<Block>({ lines: ['event: ping'] }, { lines: ['id: 7', 'retry: 10'] });

const usageBlock = fc.nat({ max: 100_000 }).map((prompt): Block => {
  const data = JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: prompt, completion_tokens: 3, total_tokens: prompt + 3 } });
  return { lines: [`data: ${data}`], expected: { event: undefined, data }, isUsage: true };
});

const streamArb = fc
  .record({
    blocks: fc.array(fc.oneof({ arbitrary: dataBlock, weight: 3 }, { arbitrary: chatBlock, weight: 3 }, commentBlock, dataLessBlock), { maxLength: 8 }),
    usage: fc.option(usageBlock, { nil: undefined }),
    usageAt: fc.nat(),
    done: fc.boolean(),
    endings: fc.array(ending, { minLength: 64, maxLength: 64 }),
  })
  .map(({ blocks, usage, usageAt, done, endings }): GeneratedStream => {
    const all = [...blocks];
    if (usage !== undefined) all.splice(usageAt % (all.length + 1), 0, usage);
    if (done) all.push({ lines: ['data: [DONE]'], expected: { event: undefined, data: '[DONE]' } });
    const parts: Buffer[] = [];
    let length = 0;
    let usageRange: [number, number] | undefined;
    let previous: Ending | undefined;
    let n = 0;
    for (const block of all) {
      const start = length;
      for (const line of [...block.lines, '']) {
        let end = endings[n++ % endings.length] as Ending;
        // CR then an LF-ended blank line would read as one CRLF: the blank line would vanish.
        if (previous === '\r' && line === '' && end === '\n') end = '\r\n';
        const bytes = Buffer.from(line + end);
        parts.push(bytes);
        length += bytes.length;
        previous = end;
      }
      if (block.isUsage === true) usageRange = [start, length];
    }
    const expected = all.flatMap((b) => (b.expected === undefined ? [] : [b.expected]));
    return { bytes: Buffer.concat(parts), expected, usageRange };
  });

/** Cut points (any number, any place, empty chunks allowed) or one chunk per byte. */
const cutsArb = fc.oneof({ arbitrary: fc.array(fc.nat(), { maxLength: 12 }), weight: 4 }, fc.constant('bytes' as const));

function split(bytes: Buffer, cuts: number[] | 'bytes'): Buffer[] {
  if (cuts === 'bytes') return [...bytes].map((b) => Buffer.from([b]));
  const points = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    // Copies, so that no chunk shares memory with the single-push run.
    chunks.push(Buffer.from(bytes.subarray(from, point)));
    from = point;
  }
  return chunks;
}

function decodeAll(chunks: Buffer[], maxEventBytes?: number) {
  const decoder = new SseDecoder({ maxEventBytes });
  const events = [...chunks.flatMap((c) => decoder.push(c)), ...decoder.end()];
  return {
    events: events.map((e) => ({ event: e.event, data: e.data, raw: e.raw.toString('latin1'), start: e.start, end: e.end })),
    dropped: decoder.droppedEvents,
  };
}

function tapAll(chunks: Buffer[], dropUsageEvent: boolean, maxEventBytes?: number) {
  const tap = new SseUsageTap({ dropUsageEvent, maxEventBytes });
  const forwarded: Buffer[] = [];
  let sameObjects = true;
  for (const chunk of chunks) {
    const out = tap.push(chunk);
    if (!dropUsageEvent && out !== chunk) sameObjects = false;
    if (out !== undefined) forwarded.push(out);
  }
  const tail = tap.end();
  if (tail !== undefined) forwarded.push(tail);
  return {
    output: Buffer.concat(forwarded).toString('latin1'),
    usage: tap.usage,
    sawDone: tap.sawDone,
    eventCount: tap.eventCount,
    sameObjects,
  };
}

const maxEventBytesArb = fc.constantFrom(undefined, 40, 160);
const runs = { numRuns: 300 };

describe('SSE properties over arbitrary chunking', () => {
  it('decodes the generated events, whatever the chunking', () => {
    fc.assert(
      fc.property(streamArb, cutsArb, ({ bytes, expected }, cuts) => {
        const { events, dropped } = decodeAll(split(bytes, cuts));
        assert.deepEqual(
          events.map(({ event, data }) => ({ event, data })),
          expected,
        );
        assert.equal(dropped, 0);
        for (const e of events) assert.equal(e.raw, bytes.subarray(e.start, e.end).toString('latin1'));
      }),
      runs,
    );
  });

  it('yields the same events and drop count as a single push, size limit included', () => {
    fc.assert(
      fc.property(streamArb, cutsArb, maxEventBytesArb, ({ bytes }, cuts, max) => {
        assert.deepEqual(decodeAll(split(bytes, cuts), max), decodeAll([bytes], max));
      }),
      runs,
    );
  });

  it('taps the same usage, [DONE] and forwarded bytes as a single push, in both modes', () => {
    fc.assert(
      fc.property(streamArb, cutsArb, maxEventBytesArb, fc.boolean(), ({ bytes }, cuts, max, drop) => {
        const chunks = split(bytes, cuts);
        const whole = tapAll([bytes], drop, max);
        const pieces = tapAll(chunks, drop, max);
        assert.deepEqual(pieces, whole);
        if (!drop) {
          assert.equal(pieces.sameObjects, true);
          assert.equal(pieces.output, bytes.toString('latin1'));
        }
      }),
      runs,
    );
  });

  it('drops exactly the usage event in drop mode and still reads its usage', () => {
    fc.assert(
      fc.property(streamArb, cutsArb, ({ bytes, usageRange, expected }, cuts) => {
        const result = tapAll(split(bytes, cuts), true);
        const kept = usageRange === undefined ? bytes : Buffer.concat([bytes.subarray(0, usageRange[0]), bytes.subarray(usageRange[1])]);
        assert.equal(result.output, kept.toString('latin1'));
        assert.equal(result.usage !== undefined, usageRange !== undefined);
        assert.equal(result.sawDone, expected.at(-1)?.data === '[DONE]');
      }),
      runs,
    );
  });
});

describe('secrets in error events over arbitrary chunking', () => {
  const SECRETS = ['sk-proj-PropertyKey0123456789', 'plain-secret-for-property-42'];
  const secret = fc.constantFrom(...SECRETS);
  const text = fc.string({ maxLength: 12 });

  /** Error events in the shapes the tap recognises, each echoing a key somewhere in its text. */
  const errorBlock = fc.record({ shape: fc.nat({ max: 3 }), key: secret, before: text, after: text }).map(({ shape, key, before, after }) => {
    const message = `${before}${key}${after}`;
    const data = [
      JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }),
      JSON.stringify({ type: 'error', code: 'revoked', message, param: null }),
      JSON.stringify({ type: 'response.failed', response: { id: 'resp_1', status: 'failed', error: { code: 'server_error', message } } }),
      message.replace(/[\r\n]/g, ' '),
    ][shape] as string;
    return { lines: [...(shape === 1 || shape === 3 ? ['event: error'] : []), `data: ${data}`], isError: true };
  });
  /** Model output that happens to contain a key: forwarded as generated. */
  const echoBlock = fc.record({ key: secret, before: text }).map(({ key, before }) => ({
    lines: [`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `${before}${key}` }, finish_reason: null }] })}`],
    isError: false,
  }));
  const otherBlock = fc.oneof(chatBlock, commentBlock, dataLessBlock).map((block) => ({ lines: block.lines, isError: false }));
  const blocksArb = fc.array(fc.record({ block: fc.oneof(errorBlock, echoBlock, otherBlock), end: ending }), { maxLength: 8 });

  it('blanks every key in error events and nothing else, in both modes', () => {
    fc.assert(
      fc.property(blocksArb, cutsArb, fc.boolean(), (blocks, cuts, drop) => {
        const raw = blocks.map(({ block, end }) => [...block.lines, ''].map((line) => line + end).join(''));
        const bytes = Buffer.from(raw.join(''));
        const expected = blocks.map(({ block }, i) => (block.isError ? SECRETS.reduce((t, s) => t.split(s).join('[redacted]'), raw[i] as string) : raw[i])).join('');
        const tap = new SseUsageTap({ dropUsageEvent: drop, secrets: SECRETS });
        const out: Buffer[] = [];
        for (const chunk of split(bytes, cuts)) {
          const forwarded = tap.push(chunk);
          if (forwarded !== undefined) out.push(forwarded);
        }
        const tail = tap.end();
        if (tail !== undefined) out.push(tail);
        assert.equal(Buffer.concat(out).toString(), expected);
      }),
      runs,
    );
  });
});
