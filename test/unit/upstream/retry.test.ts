import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoffDelay, isQuotaExhausted, isRetryableError, isRetryableStatus, isUpstreamFaultStatus, MAX_BACKOFF_MS, parseRetryAfter } from '../../../src/upstream/retry.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');

describe('Retry-After parsing', () => {
  it('reads retry-after-ms first (a float, OpenAI)', () => {
    assert.equal(parseRetryAfter({ 'retry-after-ms': '644.5', 'retry-after': '3' }, NOW), 644.5);
  });
  it('reads retry-after as seconds', () => {
    assert.equal(parseRetryAfter({ 'retry-after': '3' }, NOW), 3000);
    assert.equal(parseRetryAfter({ 'retry-after': '0' }, NOW), 0);
    assert.equal(parseRetryAfter({ 'retry-after': '1.5' }, NOW), 1500);
  });
  it('reads retry-after as an HTTP date, relative to now; a past date is 0', () => {
    assert.equal(parseRetryAfter({ 'retry-after': 'Sun, 01 Mar 2026 12:00:07 GMT' }, NOW), 7000);
    assert.equal(parseRetryAfter({ 'retry-after': 'Sun, 01 Mar 2026 11:00:00 GMT' }, NOW), 0);
  });
  it('ignores absent, negative and unreadable values', () => {
    assert.equal(parseRetryAfter({}, NOW), undefined);
    assert.equal(parseRetryAfter({ 'retry-after': 'soon' }, NOW), undefined);
    assert.equal(parseRetryAfter({ 'retry-after': '-5' }, NOW), undefined);
    assert.equal(parseRetryAfter({ 'retry-after-ms': 'abc', 'retry-after': '2' }, NOW), 2000);
    assert.equal(parseRetryAfter({ 'retry-after-ms': '-1' }, NOW), undefined);
  });
});

describe('backoff', () => {
  it('stays within base × 2^n × [0.5, 1), capped at 8 s, for any retry and random draw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 0, max: 10_000 }), (retry, random, base) => {
        const wait = backoffDelay(retry, base, () => random);
        const full = base * 2 ** retry;
        return wait >= Math.min(MAX_BACKOFF_MS, full * 0.5) && wait <= Math.min(MAX_BACKOFF_MS, full) && wait <= MAX_BACKOFF_MS;
      }),
    );
  });
  it('doubles per retry: 250 ms base gives 125-250, 250-500, 500-1000 ms', () => {
    assert.deepEqual([0, 1, 2].map((n) => backoffDelay(n, 250, () => 0)), [125, 250, 500]);
    assert.deepEqual([0, 1, 2].map((n) => backoffDelay(n, 250, () => 0.999999)).map(Math.round), [250, 500, 1000]);
  });
});

describe('what is retried', () => {
  it('retries 429, 500, 502, 503, 504 and Anthropic\'s 529 (overloaded) only', () => {
    assert.deepEqual([400, 401, 404, 408, 409, 429, 500, 501, 502, 503, 504, 505, 529].filter(isRetryableStatus), [429, 500, 502, 503, 504, 529]);
  });
  it('counts Anthropic\'s 529 (overloaded) against the upstream\'s circuit, like 503', () => {
    assert.deepEqual([429, 499, 500, 501, 503, 505, 529].filter(isUpstreamFaultStatus), [500, 503, 529]);
  });
  it('retries connection and first-byte failures, not aborts or closed pools', () => {
    const coded = (code: string) => Object.assign(new Error(code), { code });
    assert.ok(isRetryableError(coded('ECONNREFUSED')));
    assert.ok(isRetryableError(coded('UND_ERR_SOCKET')));
    assert.ok(isRetryableError(coded('UND_ERR_HEADERS_TIMEOUT')));
    assert.ok(isRetryableError(new Error('wrapped', { cause: coded('ECONNRESET') })));
    assert.ok(!isRetryableError(coded('UND_ERR_ABORTED')));
    assert.ok(!isRetryableError(coded('UND_ERR_DESTROYED')));
    assert.ok(!isRetryableError(new Error('no code')));
  });
  it('tells an empty account (insufficient_quota in code or type) from a rate limit', () => {
    assert.ok(isQuotaExhausted(JSON.stringify({ error: { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' } })));
    assert.ok(isQuotaExhausted(JSON.stringify({ error: { message: 'old shape', type: 'insufficient_quota', code: null } })));
    assert.ok(!isQuotaExhausted(JSON.stringify({ error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } })));
    assert.ok(!isQuotaExhausted(JSON.stringify({ error: { code: '429', message: 'Azure throttling' } })));
    assert.ok(!isQuotaExhausted(''));
  });
});
