import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { RequestWindow, TokenWindow } from '../../../src/limits/sliding-window.js';

it('a request slot frees exactly when the oldest admission turns 60 s old', () => {
  const window = new RequestWindow(3);
  window.push(1000, 3);
  window.push(2000, 3);
  window.push(3000, 3);
  assert.equal(window.count(60_999), 3);
  assert.equal(window.expiryOf(0), 61_000);
  assert.equal(window.count(61_000), 2);
  assert.equal(window.msUntilEmpty(61_000), 2000);
  assert.equal(window.count(63_000), 0);
  assert.equal(window.msUntilEmpty(63_000), 0);
});

it('the request ring grows with use but never past the limit, keeping order across the wrap', () => {
  const window = new RequestWindow(20);
  for (let i = 0; i < 20; i += 1) window.push(i, 20);
  assert.equal(window.count(19), 20);
  assert.equal(window.count(60_004), 15);
  for (let i = 0; i < 5; i += 1) window.push(60_004, 20);
  assert.equal(window.count(60_004), 20);
  assert.equal(window.expiryOf(0), 60_005);
  assert.equal(window.expiryOf(14), 60_019);
  assert.equal(window.expiryOf(19), 120_004);
});

it('token entries can be adjusted while in the window, and no longer once they left it', () => {
  const window = new TokenWindow();
  const first = window.push(0, 500);
  const second = window.push(10_000, 300);
  assert.equal(window.used(10_000), 800);
  window.adjust(first, 200);
  assert.equal(window.used(10_000), 500);
  assert.equal(window.freeAt(200), 60_000);
  assert.equal(window.freeAt(201), 70_000);
  assert.equal(window.used(60_000), 300);
  window.adjust(first, 9_999);
  assert.equal(window.used(60_000), 300);
  window.adjust(second, 0);
  assert.equal(window.used(60_000), 0);
});

it('the token window agrees with a naive list under any sequence of pushes, adjustments and reads', () => {
  type Op = { kind: 'push'; dt: number; amount: number } | { kind: 'adjust'; pick: number; amount: number } | { kind: 'read'; dt: number };
  const op = fc.oneof(
    fc.record({ kind: fc.constant('push' as const), dt: fc.integer({ min: 0, max: 20_000 }), amount: fc.integer({ min: 0, max: 1000 }) }),
    fc.record({ kind: fc.constant('adjust' as const), pick: fc.nat(), amount: fc.integer({ min: 0, max: 1000 }) }),
    fc.record({ kind: fc.constant('read' as const), dt: fc.integer({ min: 0, max: 70_000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops: Op[]) => {
      const window = new TokenWindow();
      const model: Array<{ seq: number; at: number; amount: number }> = [];
      let now = 0;
      for (const step of ops) {
        if (step.kind === 'push') {
          now += step.dt;
          model.push({ seq: window.push(now, step.amount), at: now, amount: step.amount });
        } else if (step.kind === 'adjust') {
          if (model.length === 0) continue;
          const entry = model[step.pick % model.length]!;
          window.adjust(entry.seq, step.amount);
          // An entry that already left the window is not adjusted.
          if (entry.at > now - 60_000) entry.amount = step.amount;
        } else {
          now += step.dt;
        }
        const expected = model.filter((entry) => entry.at > now - 60_000).reduce((sum, entry) => sum + entry.amount, 0);
        assert.equal(window.used(now), expected);
      }
    }),
  );
});
