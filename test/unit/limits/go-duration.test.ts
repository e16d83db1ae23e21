import assert from 'node:assert/strict';
import { it } from 'node:test';
import { formatGoDuration } from '../../../src/limits/index.js';

it('formats durations the way Go prints time.Duration, as OpenAI sends x-ratelimit-reset-*', () => {
  const cases: Array<[number, string]> = [
    [0, '0s'],
    [-5, '0s'],
    [Number.NaN, '0s'],
    [2, '2ms'],
    [12, '12ms'],
    [999, '999ms'],
    [1000, '1s'],
    [9816, '9.816s'],
    [9810, '9.81s'],
    [59_999, '59.999s'],
    [60_000, '1m0s'],
    [61_500, '1m1.5s'],
    [360_000, '6m0s'],
    [3_600_000, '1h0m0s'],
    [3_723_500, '1h2m3.5s'],
    [86_400_000, '24h0m0s'],
  ];
  for (const [ms, expected] of cases) assert.equal(formatGoDuration(ms), expected, String(ms));
});

it('rounds a fraction of a millisecond up, so a reset is never announced early', () => {
  assert.equal(formatGoDuration(0.2), '1ms');
  assert.equal(formatGoDuration(999.5), '1s');
  assert.equal(formatGoDuration(1000.1), '1.001s');
});
