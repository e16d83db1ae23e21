import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Glob, GlobSet } from '../../../src/domain/glob.js';

const matches = (glob: string, name: string): boolean => new Glob(glob).matches(name);

/** The RegExp the gateway used to build (`*` → `.*`, everything else literal): right, but it backtracks. */
function referenceRegExp(glob: string): RegExp {
  const source = glob
    .split('*')
    .map((piece) => piece.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's');
}

describe('Glob', () => {
  it('lets * stand for any run of characters, none included, and matches whole names only', () => {
    assert.ok(matches('gpt-4o*', 'gpt-4o'));
    assert.ok(matches('gpt-4o*', 'gpt-4o-mini'));
    assert.ok(matches('gpt-4o*', 'gpt-4o-2024-08-06'));
    assert.ok(!matches('gpt-4o*', 'my-gpt-4o'));
    assert.ok(matches('*-mini', 'o4-mini'));
    assert.ok(matches('*-mini', '-mini'));
    assert.ok(!matches('*-mini', 'o4-mini-2025'));
    assert.ok(matches('ft:*:acme:*', 'ft:gpt-4o-mini:acme::abc123'));
    assert.ok(!matches('ft:*:acme:*', 'ft:gpt-4o-mini:other::abc123'));
    assert.ok(matches('meta-llama/*', 'meta-llama/Llama-3-8B'));
  });

  it('treats every other character literally ("." is not "any character", "+" is not "one or more")', () => {
    assert.ok(!matches('qwen2.5', 'qwen2x5'));
    assert.ok(matches('qwen2.5', 'qwen2.5'));
    assert.ok(!matches('a+b', 'aab'));
    assert.ok(matches('a+b', 'a+b'));
    assert.ok(!matches('*.5', 'qwen2x5'));
  });

  it('is case-sensitive, as the providers are', () => {
    assert.ok(!matches('gpt-4o', 'GPT-4o'));
    assert.ok(!matches('gpt-*', 'GPT-4o'));
  });

  it('tells exact globs from wildcards, and stars-only globs match everything', () => {
    assert.equal(new Glob('gpt-4o').exact, true);
    assert.equal(new Glob('gpt-4o*').exact, false);
    for (const glob of ['*', '**', '***']) {
      assert.equal(new Glob(glob).any, true, glob);
      assert.ok(matches(glob, ''), glob);
      assert.ok(matches(glob, 'anything at all'), glob);
    }
  });

  it('handles several stars, stars at both ends and consecutive stars', () => {
    assert.ok(matches('*mini*', 'gpt-4o-mini-2024'));
    assert.ok(matches('*mini*', 'mini'));
    assert.ok(!matches('*mini*', 'minx'));
    assert.ok(matches('a*b*c', 'abc'));
    assert.ok(matches('a*b*c', 'a-x-b-y-c'));
    assert.ok(!matches('a*b*c', 'a-c-b'));
    assert.ok(matches('a**b', 'ab'));
    assert.ok(matches('*a*b*c*d*', 'xaxbxcxdx'));
    assert.ok(!matches('*a*b*c*d*', 'dcba'));
  });

  it('never lets the pieces overlap: the first and last pieces and those between each need their own characters', () => {
    assert.ok(!matches('a*a*a', 'aa'));
    assert.ok(matches('a*a*a', 'aaa'));
    assert.ok(!matches('a*a', 'a'));
    assert.ok(matches('*ab*ab*', 'abab'));
    assert.ok(!matches('*ab*ab*', 'aba'));
    assert.ok(!matches('ab*ba', 'aba'));
    assert.ok(matches('ab*ba', 'abba'));
    assert.ok(!matches('*aa*ab', 'aab'));
    assert.ok(matches('*aa*ab', 'aaab'));
  });

  it('agrees with the RegExp it replaced on random names and globs', () => {
    const glob = fc.string({ unit: fc.constantFrom('a', 'b', '.', '+', '*'), maxLength: 8 });
    const name = fc.string({ unit: fc.constantFrom('a', 'b', '.', '+'), maxLength: 10 });
    fc.assert(
      fc.property(glob, name, (g, n) => {
        assert.equal(new Glob(g).matches(n), referenceRegExp(g).test(n), `glob ${JSON.stringify(g)} against ${JSON.stringify(n)}`);
      }),
      { numRuns: 5000 },
    );
  });

  it('matches a long name in linear time (1 MB takes about ten times 100 KB, not a hundred)', () => {
    // Each case is a miss that scans the whole name: the work a backtracking RegExp did quadratically (or worse).
    const cases: Array<[string, (size: number) => string]> = [
      ['*mini*', (size) => 'min'.repeat(Math.ceil(size / 3)).slice(0, size)],
      ['*a*b*c*d*', (size) => 'abc'.repeat(Math.ceil(size / 3)).slice(0, size)],
    ];
    for (const [pattern, nameOf] of cases) {
      const glob = new Glob(pattern);
      const small = nameOf(100_000);
      const large = nameOf(1_000_000);
      assert.equal(glob.matches(small), false);
      assert.equal(glob.matches(large), false);
      // The same number of characters either way, so linear time gives a ratio near 1 and quadratic near 10.
      // Enough rounds that each timing spans milliseconds, and the best of several, keep a busy machine from
      // making the comparison flaky.
      const times = roundsLasting(5, () => glob.matches(large));
      const perLarge = bestOf(5, () => repeat(times, () => glob.matches(large)));
      const perSmall = bestOf(5, () => repeat(times * 10, () => glob.matches(small)));
      const ratio = perLarge / perSmall;
      assert.ok(ratio < 4, `${pattern}: 10× the name took ${(ratio * 10).toFixed(1)}× the time (${perLarge.toFixed(2)} ms vs ${perSmall.toFixed(2)} ms for the same characters)`);
    }
  });
});

function repeat(times: number, run: () => unknown): void {
  for (let i = 0; i < times; i++) run();
}

/** How many runs of `run` take at least `ms` milliseconds, measured after a warm-up run (at most 10,000). */
function roundsLasting(ms: number, run: () => unknown): number {
  run();
  const once = bestOf(3, run);
  return Math.min(10_000, Math.max(1, Math.ceil(ms / Math.max(once, 0.0001))));
}

function bestOf(rounds: number, run: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    run();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

describe('GlobSet', () => {
  it('matches when any glob of the list does; "*" serves everything', () => {
    assert.ok(new GlobSet(['*']).matches('anything at all'));
    assert.equal(new GlobSet(['*']).any, true);
    const set = new GlobSet(['gpt-4o', 'o3*', 'text-embedding-3-*']);
    assert.ok(set.matches('gpt-4o'));
    assert.ok(!set.matches('gpt-4o-mini'));
    assert.ok(set.matches('o3-mini'));
    assert.ok(set.matches('text-embedding-3-small'));
    assert.ok(!set.matches('text-embedding-ada-002'));
    assert.equal(set.any, false);
  });

  it('lists its exact names (the ones that can be shown) and keeps the globs as written', () => {
    const set = new GlobSet(['gpt-4o', 'o3*', 'qwen2.5']);
    assert.deepEqual(set.exact, ['gpt-4o', 'qwen2.5']);
    assert.deepEqual(set.patterns, ['gpt-4o', 'o3*', 'qwen2.5']);
  });

  it('matches nothing when empty', () => {
    const set = new GlobSet([]);
    assert.ok(!set.matches('gpt-4o'));
    assert.ok(!set.matches(''));
  });
});
