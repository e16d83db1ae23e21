import assert from 'node:assert/strict';
import { ServerResponse, IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatMs, OVERHEAD_HEADER, stampOverhead } from '../../../src/observability/overhead.js';

describe('the overhead header', () => {
  it('formats milliseconds to the microsecond, the same number the log line writes', () => {
    assert.equal(formatMs(0.4123), '0.412');
    assert.equal(formatMs(12.0049), '12.005');
    assert.equal(formatMs(3), '3.000');
    assert.equal(formatMs(-0.2), '0.000', 'never negative');
    fc.assert(fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), (ms) => Number(formatMs(ms)) === Math.round(ms * 1000) / 1000));
  });

  it('goes into a copy of the headers object writeHead is given (the caller\'s own is left alone), else onto the response', () => {
    const response = new ServerResponse(new IncomingMessage(new Socket()));
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const args: unknown[] = [200, headers];
    stampOverhead(response, args, 1.5);
    assert.deepEqual(args[1], { [OVERHEAD_HEADER]: '1.500', 'content-type': 'application/json' });
    assert.deepEqual(headers, { 'content-type': 'application/json' });
    const withReason: unknown[] = [200, 'OK', Object.freeze({ 'content-type': 'text/plain' })];
    stampOverhead(response, withReason, 2);
    assert.deepEqual(withReason[2], { [OVERHEAD_HEADER]: '2.000', 'content-type': 'text/plain' }, 'a frozen object is copied too');
    assert.equal(response.getHeader(OVERHEAD_HEADER), undefined);
    const bare = new ServerResponse(new IncomingMessage(new Socket()));
    stampOverhead(bare, [204], 0.5);
    assert.equal(bare.getHeader(OVERHEAD_HEADER), '0.500', 'no headers object: set on the response');
  });
});
