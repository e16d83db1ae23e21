import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ENTRY_OVERHEAD_BYTES, type CachedAnswer } from '../../../src/cache/cached-answer.js';
import { LruStore } from '../../../src/cache/lru-store.js';

const answer = (bytes: number, tag = 'x'): CachedAnswer => ({ contentType: 'application/json', body: Buffer.alloc(bytes, tag), usage: undefined, storedAt: 0 });
/** What one entry of `bytes` body bytes costs the budget. */
const cost = (bytes: number): number => bytes + 'application/json'.length + ENTRY_OVERHEAD_BYTES;

describe('LruStore', () => {
  it('gives back what was stored, synchronously', () => {
    const store = new LruStore(10_000);
    const stored = answer(10);
    store.set('a', stored, 60_000);
    assert.equal(store.get('a'), stored);
    assert.equal(store.get('b'), undefined);
  });

  it('forgets an entry once its TTL has passed', () => {
    let now = 1_000;
    const store = new LruStore(10_000, () => now);
    store.set('a', answer(10), 500);
    now += 499;
    assert.ok(store.get('a'));
    now += 1;
    assert.equal(store.get('a'), undefined);
    assert.equal(store.bytes, 0, 'its bytes are freed');
  });

  it('evicts the least recently used entry first when over budget', () => {
    const store = new LruStore(cost(100) * 2);
    store.set('a', answer(100), 60_000);
    store.set('b', answer(100), 60_000);
    assert.ok(store.get('a'), 'a is now the most recently used');
    store.set('c', answer(100), 60_000);
    assert.equal(store.get('b'), undefined, 'b was the least recently used');
    assert.ok(store.get('a'));
    assert.ok(store.get('c'));
  });

  it('does not keep an entry larger than its whole budget (and keeps the others)', () => {
    const store = new LruStore(cost(100));
    store.set('a', answer(100), 60_000);
    store.set('big', answer(101), 60_000);
    assert.equal(store.get('big'), undefined);
    assert.ok(store.get('a'));
  });

  it('replacing an entry counts its bytes once', () => {
    const store = new LruStore(10_000);
    store.set('a', answer(100), 60_000);
    store.set('a', answer(50), 60_000);
    assert.equal(store.bytes, cost(50));
    assert.equal(store.size, 1);
  });

  it('never holds more than its budget and returns only live entries (property)', () => {
    const op = fc.oneof(
      fc.record({ set: fc.constantFrom('a', 'b', 'c', 'd', 'e'), bytes: fc.nat(400), ttl: fc.integer({ min: 1, max: 50 }) }),
      fc.record({ get: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
      fc.record({ advance: fc.nat(20) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1500 }), fc.array(op, { maxLength: 60 }), (budget, ops) => {
        let now = 0;
        const store = new LruStore(budget, () => now);
        const model = new Map<string, { bytes: number; expires: number }>();
        for (const step of ops) {
          if ('set' in step) {
            store.set(step.set, answer(step.bytes), step.ttl);
            model.set(step.set, { bytes: step.bytes, expires: now + step.ttl });
          } else if ('get' in step) {
            const found = store.get(step.get);
            const expected = model.get(step.get);
            // Whatever it returns was stored under that name and has not expired.
            if (found !== undefined) {
              assert.ok(expected && expected.expires > now, 'only a live entry is returned');
              assert.equal(found.body.length, expected.bytes);
            }
          } else now += step.advance;
          assert.ok(store.bytes <= budget, `holds ${store.bytes} of ${budget}`);
          assert.ok(store.bytes >= 0);
        }
      }),
    );
  });
});
