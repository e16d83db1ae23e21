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

  it('goes into the headers object writeHead is given, else onto the response', () => {
    const response = new ServerResponse(new IncomingMessage(new Socket()));
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    stampOverhead(response, [200, headers], 1.5);
    assert.equal(headers[OVERHEAD_HEADER], '1.500');
    const withReason: Record<string, string> = {};
    stampOverhead(response, [200, 'OK', withReason], 2);
    assert.equal(withReason[OVERHEAD_HEADER], '2.000');
    const frozen = Object.freeze({ 'content-type': 'text/plain' });
    stampOverhead(response, [200, frozen], 0.25);
    assert.equal(response.getHeader(OVERHEAD_HEADER), '0.250', 'a frozen object is left alone');
    const bare = new ServerResponse(new IncomingMessage(new Socket()));
    stampOverhead(bare, [204], 0.5);
    assert.equal(bare.getHeader(OVERHEAD_HEADER), '0.500');
  });
});
