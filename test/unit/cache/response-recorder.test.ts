import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ResponseRecorder } from '../../../src/cache/response-recorder.js';

/** Serves one request with `write`, installing a recorder first; returns the recorder and what the client received. */
async function serveOnce(maxBytes: number, write: (response: ServerResponse) => void): Promise<{ recorder: ResponseRecorder; received: Buffer; contentType: string | null }> {
  let recorder: ResponseRecorder | undefined;
  const server = createServer((_request, response) => {
    recorder = new ResponseRecorder(response, maxBytes);
    write(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const received = Buffer.from(await response.arrayBuffer());
    return { recorder: recorder!, received, contentType: response.headers.get('content-type') };
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

type Piece = { kind: 'string'; text: string } | { kind: 'latin1'; text: string } | { kind: 'buffer'; bytes: Uint8Array } | { kind: 'view'; bytes: Uint8Array };

const piece: fc.Arbitrary<Piece> = fc.oneof(
  fc.record({ kind: fc.constant('string' as const), text: fc.string({ unit: 'grapheme', maxLength: 20 }) }),
  fc.record({ kind: fc.constant('latin1' as const), text: fc.string({ maxLength: 20 }) }),
  fc.record({ kind: fc.constant('buffer' as const), bytes: fc.uint8Array({ maxLength: 20 }) }),
  fc.record({ kind: fc.constant('view' as const), bytes: fc.uint8Array({ minLength: 2, maxLength: 20 }) }),
);

function writePiece(response: ServerResponse, p: Piece, last: boolean): void {
  const done = (): void => undefined;
  switch (p.kind) {
    case 'string':
      if (last) response.end(p.text, done);
      else response.write(p.text, done);
      return;
    case 'latin1':
      if (last) response.end(p.text, 'latin1');
      else response.write(p.text, 'latin1', done);
      return;
    case 'buffer':
      if (last) response.end(Buffer.from(p.bytes));
      else response.write(Buffer.from(p.bytes));
      return;
    case 'view': {
      // A view into a larger buffer: only its own bytes count.
      const view = new Uint8Array(p.bytes.buffer, 1, p.bytes.length - 1);
      if (last) response.end(view);
      else response.write(view);
    }
  }
}

describe('ResponseRecorder', () => {
  it('keeps exactly the bytes the client received, however they were written (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 6 }), fc.boolean(), async (pieces, endEmpty) => {
        const { recorder, received } = await serveOnce(1 << 20, (response) => {
          response.writeHead(200, { 'Content-Type': 'text/event-stream' });
          pieces.forEach((p, index) => writePiece(response, p, !endEmpty && index === pieces.length - 1));
          if (endEmpty || pieces.length === 0) response.end();
        });
        assert.equal(recorder.status, 200);
        assert.equal(recorder.contentType, 'text/event-stream');
        assert.deepEqual(recorder.body(), received);
      }),
      { numRuns: 40 },
    );
  });

  it("reads the content type from the response's own headers when writeHead names none", async () => {
    const { recorder, contentType } = await serveOnce(100, (response) => {
      response.setHeader('content-type', 'application/json');
      response.writeHead(201);
      response.end('{}');
    });
    assert.equal(contentType, 'application/json');
    assert.equal(recorder.status, 201);
    assert.equal(recorder.contentType, 'application/json');
  });

  it('keeps nothing once more than its limit was written, and the client still gets everything', async () => {
    const { recorder, received } = await serveOnce(10, (response) => {
      response.writeHead(200, ['Content-Type', 'application/json']);
      response.write('0123456789');
      response.end('x');
    });
    assert.equal(received.toString(), '0123456789x');
    assert.equal(recorder.overflowed, true);
    assert.equal(recorder.body(), undefined);
  });
});
