import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker, KeyHealth, SlidingWindow } from '../../../src/upstream/health.js';

const settings = { errorRatio: 0.5, minRequests: 4, windowMs: 10_000, openMs: 30_000 };

describe('sliding window', () => {
  it('counts what happened in the last window only', () => {
    const window = new SlidingWindow(10_000);
    window.record(0, true);
    window.record(5_000, false);
    assert.deepEqual(window.totals(5_000), { requests: 2, errors: 1 });
    assert.deepEqual(window.totals(10_500), { requests: 1, errors: 0 });
    assert.deepEqual(window.totals(16_000), { requests: 0, errors: 0 });
  });
});

describe('circuit breaker', () => {
  it('stays closed below the minimum number of requests, however many fail', () => {
    const circuit = new CircuitBreaker(settings);
    for (let i = 0; i < 3; i++) assert.equal(circuit.record('failure', false, 1_000), undefined);
    assert.equal(circuit.state(1_000).state, 'closed');
  });

  it('opens when the error ratio reaches the threshold over enough requests', () => {
    const circuit = new CircuitBreaker(settings);
    circuit.record('success', false, 0);
    circuit.record('success', false, 0);
    circuit.record('failure', false, 0);
    assert.equal(circuit.record('failure', false, 100), 'opened');
    assert.deepEqual(circuit.state(100), { state: 'open', until: 30_100 });
    assert.ok(!circuit.canPass(29_000));
    assert.equal(circuit.availableAt(29_000), 30_100);
  });

  it('does not open on failures spread beyond the window', () => {
    const circuit = new CircuitBreaker(settings);
    circuit.record('failure', false, 0);
    circuit.record('failure', false, 0);
    circuit.record('failure', false, 20_000);
    assert.equal(circuit.record('failure', false, 20_000), undefined);
  });

  it('lets exactly one half-open probe through after the pause; its success closes the circuit', () => {
    const circuit = opened();
    assert.equal(circuit.state(30_000).state, 'half-open');
    assert.ok(circuit.canPass(30_000));
    assert.equal(circuit.enter(30_000), true);
    assert.ok(!circuit.canPass(30_001), 'a second request waits for the probe');
    assert.equal(circuit.availableAt(30_001), Infinity);
    assert.equal(circuit.record('success', true, 30_500), 'closed');
    assert.equal(circuit.state(30_500).state, 'closed');
    assert.ok(circuit.canPass(30_500));
    assert.equal(circuit.enter(30_500), false);
  });

  it('re-opens for another pause when the probe fails', () => {
    const circuit = opened();
    circuit.enter(30_000);
    assert.equal(circuit.record('failure', true, 31_000), 'opened');
    assert.deepEqual(circuit.state(31_000), { state: 'open', until: 61_000 });
  });

  it('frees the probe slot when the probe ends without a verdict (the client left)', () => {
    const circuit = opened();
    circuit.enter(30_000);
    assert.equal(circuit.record('neutral', true, 30_100), undefined);
    assert.ok(circuit.canPass(30_100));
    assert.equal(circuit.state(30_100).state, 'half-open');
  });

  it('ignores late results of requests sent before it opened', () => {
    const circuit = opened();
    assert.equal(circuit.record('success', false, 1_000), undefined);
    assert.equal(circuit.state(1_000).state, 'open');
  });

  function opened(): CircuitBreaker {
    const circuit = new CircuitBreaker(settings);
    for (let i = 0; i < 4; i++) circuit.record('failure', false, 0);
    assert.equal(circuit.state(0).state, 'open');
    return circuit;
  }
});

describe('key health', () => {
  it('rests a key for a while, keeping the longer of two rests', () => {
    const key = new KeyHealth();
    key.coolFor(0, 5_000);
    key.coolFor(1_000, 1_000);
    assert.ok(!key.usable(4_999));
    assert.deepEqual(key.status(4_999), { status: 'cooling', until: 5_000 });
    assert.ok(key.usable(5_000));
    assert.deepEqual(key.status(5_000), { status: 'healthy' });
  });

  it('keeps a disabled key out for good, with its reason', () => {
    const key = new KeyHealth();
    assert.equal(key.disable('HTTP 401', 7), true);
    assert.equal(key.disable('HTTP 403', 8), false, 'the first reason stays');
    assert.ok(!key.usable(Number.MAX_SAFE_INTEGER));
    assert.equal(key.availableAt(0), Infinity);
    assert.deepEqual(key.status(9), { status: 'disabled', reason: 'HTTP 401', at: 7 });
  });
});
