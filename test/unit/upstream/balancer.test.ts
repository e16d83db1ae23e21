import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseKey, chooseWeighted, type Choosable } from '../../../src/upstream/balancer.js';

/** mulberry32: a small seeded PRNG, so the statistics below are the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const upstream = (name: string, weight: number, inFlight = 0, eligible = true): Choosable & { name: string } => ({ name, weight, inFlight, eligible });

function split(candidates: Array<Choosable & { name: string }>, draws: number, random: () => number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < draws; i++) {
    const chosen = chooseWeighted(candidates, random)!;
    counts[chosen.name] = (counts[chosen.name] ?? 0) + 1;
  }
  return counts;
}

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

  it('never picks an ineligible candidate, and returns undefined when none is eligible', () => {
    const counts = split([upstream('a', 1), upstream('b', 100, 0, false), upstream('c', 1)], 2_000, seeded(4));
    assert.equal(counts.b, undefined);
    assert.equal(chooseWeighted([upstream('a', 1, 0, false)], Math.random), undefined);
    assert.equal(chooseWeighted([], Math.random), undefined);
  });

  it('survives a random source at its bounds', () => {
    const candidates = [upstream('a', 1), upstream('b', 1)];
    assert.equal(chooseWeighted(candidates, () => 0)!.name, 'a');
    assert.equal(chooseWeighted(candidates, () => 0.999999999)!.name, 'b');
  });

  it('costs the same per candidate from 1 to 50 upstreams (three passes, no allocation)', () => {
    const time = (n: number): number => {
      const candidates = Array.from({ length: n }, (_, i) => upstream(`u${i}`, 1 + (i % 3)));
      const random = seeded(5);
      const started = process.hrtime.bigint();
      for (let i = 0; i < 20_000; i++) chooseWeighted(candidates, random);
      return Number(process.hrtime.bigint() - started) / 20_000 / n;
    };
    time(50);
    const perCandidate1 = Math.min(time(1), time(1));
    const perCandidate50 = Math.min(time(50), time(50));
    // Linear: the cost per candidate does not grow with the number of candidates.
    assert.ok(perCandidate50 <= perCandidate1 * 2, `${perCandidate1} ns vs ${perCandidate50} ns per candidate`);
  });
});

describe('key choice within an upstream', () => {
  const key = (inFlight: number, eligible = true) => ({ inFlight, eligible });

  it('takes the eligible key with the fewest in flight', () => {
    assert.equal(chooseKey([key(2), key(0), key(1)], 0), 1);
    assert.equal(chooseKey([key(2), key(0, false), key(1)], 0), 2);
  });

  it('takes equally loaded keys in turn from the cursor', () => {
    const keys = [key(0), key(0), key(0)];
    assert.deepEqual([0, 1, 2, 3].map((start) => chooseKey(keys, start)), [0, 1, 2, 0]);
  });

  it('returns -1 when no key is eligible', () => {
    assert.equal(chooseKey([key(0, false)], 0), -1);
  });
});
