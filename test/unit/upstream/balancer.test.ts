import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseKey, chooseWeighted, WeightedList, type Choosable } from '../../../src/upstream/balancer.js';
import { seededRandom as seeded } from '../../helpers/seeded-random.js';

interface Upstream extends Choosable {
  name: string;
  available: boolean;
}

const upstream = (name: string, weight: number, inFlight = 0, available = true): Upstream => ({ name, weight, inFlight, available });

/** Counts how often the balancer asked about a candidate. */
const asked = { count: 0 };
function available(candidate: { available: boolean }, counter: { count: number }): boolean {
  counter.count += 1;
  return candidate.available;
}

function split(candidates: Upstream[], draws: number, random: () => number): Record<string, number> {
  const list = new WeightedList(candidates);
  const counts: Record<string, number> = {};
  for (let i = 0; i < draws; i++) {
    const chosen = chooseWeighted(list, random, available, asked)!;
    counts[chosen.name] = (counts[chosen.name] ?? 0) + 1;
  }
  return counts;
}

describe('weighted list', () => {
  it('maps a point in [0, total) to the item whose share holds it', () => {
    const list = new WeightedList([upstream('a', 1), upstream('b', 3), upstream('c', 2)]);
    assert.equal(list.total, 6);
    assert.deepEqual([0, 0.999, 1, 3.999, 4, 5.999, 6].map((point) => list.at(point).name), ['a', 'a', 'b', 'b', 'c', 'c', 'c']);
  });
});

describe('weighted power-of-two-choices balancer', () => {
  it('splits an idle pool exactly by weight (1:3 → 25 % / 75 %, within 1.5 points over 20,000 picks)', () => {
    const counts = split([upstream('a', 1), upstream('b', 3)], 20_000, seeded(1));
    assert.ok(Math.abs(counts.a! / 20_000 - 0.25) < 0.015, JSON.stringify(counts));
  });

  it('splits 1:2:5 by weight too', () => {
    const counts = split([upstream('a', 1), upstream('b', 2), upstream('c', 5)], 40_000, seeded(2));
    assert.ok(Math.abs(counts.a! / 40_000 - 1 / 8) < 0.015, JSON.stringify(counts));
    assert.ok(Math.abs(counts.b! / 40_000 - 2 / 8) < 0.015, JSON.stringify(counts));
  });

  it('prefers the candidate with fewer requests in flight per unit of weight', () => {
    // b is drawn often (weight 3) but is busy; a, idle, wins every comparison it takes part in.
    const counts = split([upstream('a', 1, 0), upstream('b', 3, 9)], 10_000, seeded(3));
    // P(a is one of the two draws) = 1 - 0.75² = 0.4375.
    assert.ok(Math.abs(counts.a! / 10_000 - 0.4375) < 0.02, JSON.stringify(counts));
  });

  it('never picks an unavailable candidate, and returns undefined when none is available', () => {
    const counts = split([upstream('a', 1), upstream('b', 100, 0, false), upstream('c', 1)], 2_000, seeded(4));
    assert.equal(counts.b, undefined);
    assert.ok(Math.abs(counts.a! / 2_000 - 0.5) < 0.05, JSON.stringify(counts));
    assert.equal(chooseWeighted(new WeightedList([upstream('a', 1, 0, false)]), Math.random, available, asked), undefined);
    assert.equal(chooseWeighted(new WeightedList([upstream('a', 1, 0, false), upstream('b', 1, 0, false)]), Math.random, available, asked), undefined);
    assert.equal(chooseWeighted(new WeightedList<Upstream>([]), Math.random, available, asked), undefined);
  });

  it('keeps the split by weight among the available when most of the list is not (the scan after refused draws)', () => {
    const candidates = Array.from({ length: 50 }, (_, i) => upstream(`down${i}`, 10, 0, false));
    candidates[7] = upstream('light', 1);
    candidates[31] = upstream('heavy', 3);
    const counts = split(candidates, 20_000, seeded(6));
    assert.deepEqual(Object.keys(counts).sort(), ['heavy', 'light']);
    assert.ok(Math.abs(counts.light! / 20_000 - 0.25) < 0.015, JSON.stringify(counts));
  });

  it('survives a random source at its bounds', () => {
    const list = new WeightedList([upstream('a', 1), upstream('b', 1)]);
    assert.equal(chooseWeighted(list, () => 0, available, asked)!.name, 'a');
    assert.equal(chooseWeighted(list, () => 0.999999999, available, asked)!.name, 'b');
  });

  it('with random 0 takes the first available candidate, so the order of the list decides', () => {
    const list = new WeightedList([upstream('down', 5, 0, false), upstream('b', 1), upstream('c', 1)]);
    assert.equal(chooseWeighted(list, () => 0, available, asked)!.name, 'b');
  });

  it('asks about the two drawn candidates only, from 2 to 50 upstreams', () => {
    for (const size of [2, 10, 50]) {
      const list = new WeightedList(Array.from({ length: size }, (_, i) => upstream(`u${i}`, 1 + (i % 3))));
      const counter = { count: 0 };
      const random = seeded(size);
      for (let i = 0; i < 1_000; i++) chooseWeighted(list, random, available, counter);
      assert.equal(counter.count, 2_000, `${size} upstreams`);
    }
  });
});

describe('key choice within an upstream', () => {
  const key = (inFlight: number, usable = true) => ({ inFlight, available: usable });

  it('takes the available key with the fewest in flight', () => {
    assert.equal(chooseKey([key(2), key(0), key(1)], 0, available, asked), 1);
    assert.equal(chooseKey([key(2), key(0, false), key(1)], 0, available, asked), 2);
  });

  it('takes equally loaded keys in turn from the cursor', () => {
    const keys = [key(0), key(0), key(0)];
    assert.deepEqual([0, 1, 2, 0].map((start) => chooseKey(keys, start, available, asked)), [0, 1, 2, 0]);
    const busy = [key(1), key(1), key(1)];
    assert.deepEqual([0, 1, 2].map((start) => chooseKey(busy, start, available, asked)), [0, 1, 2]);
  });

  it('stops at the first idle key, however many keys there are', () => {
    const keys = Array.from({ length: 10_000 }, () => key(0));
    const counter = { count: 0 };
    assert.equal(chooseKey(keys, 4_321, available, counter), 4_321);
    assert.equal(counter.count, 1);
  });

  it('returns -1 when no key is available', () => {
    assert.equal(chooseKey([key(0, false)], 0, available, asked), -1);
  });
});
