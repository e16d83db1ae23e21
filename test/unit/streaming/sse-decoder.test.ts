import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SseDecoder } from '../../../src/streaming/sse-decoder.js';
import type { SseEvent } from '../../../src/streaming/sse-decoder.js';

interface Plain {
  event: string | undefined;
  data: string;
  raw: string;
}

function plain(events: SseEvent[]): Plain[] {
  return events.map((e) => ({ event: e.event, data: e.data, raw: e.raw.toString('utf8') }));
}

/** Decodes `chunks` (strings or buffers) in order, then end(). */
function decode(chunks: (string | Buffer)[], decoder = new SseDecoder()): Plain[] {
  const events: SseEvent[] = [];
  for (const chunk of chunks) events.push(...decoder.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
  events.push(...decoder.end());
  return plain(events);
}

/** Every way to cut `bytes` in two. */
function* splitsInTwo(bytes: Buffer): Generator<Buffer[]> {
  for (let at = 0; at <= bytes.length; at++) yield [bytes.subarray(0, at), bytes.subarray(at)];
}

describe('SseDecoder line endings', () => {
  it('decodes LF-terminated events with their exact raw bytes', () => {
    assert.deepEqual(decode(['data: a\n\ndata: b\n\n']), [
      { event: undefined, data: 'a', raw: 'data: a\n\n' },
      { event: undefined, data: 'b', raw: 'data: b\n\n' },
    ]);
  });

  it('decodes CRLF-terminated events', () => {
    assert.deepEqual(decode(['data: a\r\n\r\ndata: b\r\n\r\n']), [
      { event: undefined, data: 'a', raw: 'data: a\r\n\r\n' },
      { event: undefined, data: 'b', raw: 'data: b\r\n\r\n' },
    ]);
  });

  it('decodes CR-terminated events', () => {
    assert.deepEqual(decode(['event: x\rdata: a\r\rdata: b\r\r']), [
      { event: 'x', data: 'a', raw: 'event: x\rdata: a\r\r' },
      { event: undefined, data: 'b', raw: 'data: b\r\r' },
    ]);
  });

  it('treats a CR ending one chunk and an LF starting the next as one line ending', () => {
    assert.deepEqual(decode(['data: a\r', '\n\r\n']), [{ event: undefined, data: 'a', raw: 'data: a\r\n\r\n' }]);
  });

  it('keeps the LF of a blank line split after its CR inside raw', () => {
    assert.deepEqual(decode(['data: a\r\n\r', '\ndata: b\r\n\r\n']), [
      { event: undefined, data: 'a', raw: 'data: a\r\n\r\n' },
      { event: undefined, data: 'b', raw: 'data: b\r\n\r\n' },
    ]);
  });

  it('dispatches a CR-ended blank line once the next chunk shows no LF follows', () => {
    const decoder = new SseDecoder();
    assert.deepEqual(decoder.push(Buffer.from('data: a\r\r')), []);
    assert.deepEqual(plain(decoder.push(Buffer.from('data: b\r\r'))), [{ event: undefined, data: 'a', raw: 'data: a\r\r' }]);
    assert.deepEqual(plain(decoder.end()), [{ event: undefined, data: 'b', raw: 'data: b\r\r' }]);
  });

  it('gives the same events for every split of a mixed-ending stream', () => {
    const stream = Buffer.from('data: one\r\n\r\n: note\rdata: two\rdata: 2\n\nevent: e\r\ndata: three\r\r');
    const whole = decode([stream]);
    assert.equal(whole.length, 3);
    for (const chunks of splitsInTwo(stream)) assert.deepEqual(decode(chunks), whole);
  });
});

describe('SseDecoder fields', () => {
  it('joins multiple data lines with a newline', () => {
    assert.deepEqual(decode(['data: a\ndata: b\ndata:\n\n']).map((e) => e.data), ['a\nb\n']);
  });

  it('strips exactly one leading space after the colon', () => {
    assert.deepEqual(decode(['data:x\n\ndata:  two\n\ndata\n\n']).map((e) => e.data), ['x', ' two', '']);
  });

  it('reads the event name and leaves it undefined when absent or empty', () => {
    const events = decode(['event: response.completed\ndata: {}\n\nevent:\ndata: 1\n\ndata: 2\n\n']);
    assert.deepEqual(events.map((e) => e.event), ['response.completed', undefined, undefined]);
  });

  it('ignores id, retry and unknown fields and does not dispatch blocks without data', () => {
    assert.deepEqual(decode(['id: 1\nretry: 10\nfoo: bar\n\nevent: ping\n\ndata: x\nid: 2\n\n']), [
      { event: undefined, data: 'x', raw: 'data: x\nid: 2\n\n' },
    ]);
  });

  it('returns no event for comment-only blocks and keeps them out of the next raw', () => {
    assert.deepEqual(decode([': keep-alive\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n']), [
      { event: undefined, data: 'x', raw: 'data: x\n\n' },
    ]);
  });

  it('keeps comments that follow the first field inside raw', () => {
    assert.deepEqual(decode([': before\ndata: a\n: inside\ndata: b\n\n']), [
      { event: undefined, data: 'a\nb', raw: 'data: a\n: inside\ndata: b\n\n' },
    ]);
  });

  it('reports absolute offsets of each raw block', () => {
    const decoder = new SseDecoder();
    const events = [...decoder.push(Buffer.from(': hi\n\ndata: a\n\n\ndata: bb')), ...decoder.push(Buffer.from('\n\n'))];
    assert.deepEqual(
      events.map((e) => [e.start, e.end]),
      [
        [6, 15],
        [16, 26],
      ],
    );
  });

  it('strips a leading byte order mark, even split across chunks', () => {
    const stream = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('data: x\n\n')]);
    for (const chunks of splitsInTwo(stream)) {
      assert.deepEqual(decode(chunks), [{ event: undefined, data: 'x', raw: 'data: x\n\n' }]);
    }
  });
});

describe('SseDecoder UTF-8', () => {
  for (const text of ['你好', '😀', 'a€😀你']) {
    it(`decodes ${text} split at every byte`, () => {
      const stream = Buffer.from(`data: ${text}\n\n`);
      for (const chunks of splitsInTwo(stream)) assert.deepEqual(decode(chunks).map((e) => e.data), [text]);
      const oneByteChunks = [...stream].map((byte) => Buffer.from([byte]));
      assert.deepEqual(decode(oneByteChunks).map((e) => e.data), [text]);
    });
  }

  it('accepts Uint8Array chunks that are not Buffers', () => {
    const decoder = new SseDecoder();
    const bytes = new TextEncoder().encode('data: ok\n\n');
    assert.deepEqual(plain(decoder.push(bytes)), [{ event: undefined, data: 'ok', raw: 'data: ok\n\n' }]);
  });
});

describe('SseDecoder size bound', () => {
  const big = `data: ${'x'.repeat(100)}\n\n`;
  const stream = Buffer.from(`data: a\n\n${big}data: b\n\n`);

  it('drops an oversize event, counts it and resyncs after its blank line', () => {
    const decoder = new SseDecoder({ maxEventBytes: 32 });
    assert.deepEqual(decode([stream], decoder).map((e) => e.data), ['a', 'b']);
    assert.equal(decoder.droppedEvents, 1);
  });

  it('drops the same event whatever the chunking', () => {
    for (const chunks of [...splitsInTwo(stream), [...stream].map((byte) => Buffer.from([byte]))]) {
      const decoder = new SseDecoder({ maxEventBytes: 32 });
      assert.deepEqual(decode(chunks, decoder).map((e) => e.data), ['a', 'b']);
      assert.equal(decoder.droppedEvents, 1);
    }
  });

  it('keeps an event whose raw is exactly the limit', () => {
    const decoder = new SseDecoder({ maxEventBytes: 'data: abc\n\n'.length });
    assert.deepEqual(decode(['data: abc\n\n'], decoder).map((e) => e.data), ['abc']);
    assert.equal(decoder.droppedEvents, 0);
  });

  it('does not count comment lines before a block against the limit', () => {
    const decoder = new SseDecoder({ maxEventBytes: 16 });
    assert.deepEqual(decode([`: ${'c'.repeat(100)}\ndata: a\n\n`], decoder).map((e) => e.data), ['a']);
  });
});

describe('SseDecoder end()', () => {
  it('dispatches an unterminated final event that has data', () => {
    assert.deepEqual(decode(['data: a\n\ndata: [DONE]']), [
      { event: undefined, data: 'a', raw: 'data: a\n\n' },
      { event: undefined, data: '[DONE]', raw: 'data: [DONE]' },
    ]);
    assert.deepEqual(decode(['data: x\n']), [{ event: undefined, data: 'x', raw: 'data: x\n' }]);
  });

  it('dispatches nothing for a trailing block without data', () => {
    assert.deepEqual(decode(['data: a\n\nevent: x\n', ': tail']).map((e) => e.data), ['a']);
  });
});

describe('SseDecoder atEventBoundary', () => {
  it('is true only when no partial line or open block is pending', () => {
    const decoder = new SseDecoder();
    const steps: [string, boolean][] = [
      ['', true],
      ['data: x', false],
      ['\n', false],
      ['\n', true],
      [': keep', false],
      ['-alive\n', true],
      ['\n', true],
      ['event: a\n', false],
      ['data: y\r', false],
      ['\r', false],
      ['\n', true],
    ];
    for (const [chunk, expected] of steps) {
      decoder.push(Buffer.from(chunk));
      assert.equal(decoder.atEventBoundary, expected, `after ${JSON.stringify(chunk)}`);
    }
  });

  it('is false while an oversize event is being skipped', () => {
    const decoder = new SseDecoder({ maxEventBytes: 8 });
    decoder.push(Buffer.from('data: 0123456789\n'));
    assert.equal(decoder.atEventBoundary, false);
    decoder.push(Buffer.from('\n'));
    assert.equal(decoder.atEventBoundary, true);
  });
});
