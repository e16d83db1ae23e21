import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { globToRegExp, isExactModel, isModelGlob, ModelMatcher } from '../../../src/upstream/model-glob.js';

describe('model globs', () => {
  it('lets * stand for any run of characters, none included, and matches whole names only', () => {
    const glob = globToRegExp('gpt-4o*');
    assert.ok(glob.test('gpt-4o'));
    assert.ok(glob.test('gpt-4o-mini'));
    assert.ok(glob.test('gpt-4o-2024-08-06'));
    assert.ok(!glob.test('my-gpt-4o'));
    assert.ok(globToRegExp('*-mini').test('o4-mini'));
    assert.ok(globToRegExp('ft:*:acme:*').test('ft:gpt-4o-mini:acme::abc123'));
    assert.ok(globToRegExp('meta-llama/*').test('meta-llama/Llama-3-8B'));
  });

  it('treats every other character literally ("." is not "any character")', () => {
    assert.ok(!globToRegExp('qwen2.5').test('qwen2x5'));
    assert.ok(globToRegExp('qwen2.5').test('qwen2.5'));
    assert.ok(!globToRegExp('a+b').test('aab'));
  });

  it('is case-sensitive, as the providers are', () => {
    assert.ok(!globToRegExp('gpt-4o').test('GPT-4o'));
  });

  it('refuses globs that could never match a model name: empty, spaces, ?, brackets, quotes', () => {
    for (const bad of ['', ' ', 'gpt 4o', 'gpt-4?', '[abc]', '"gpt"', 'gpt-4o\n', 'x'.repeat(257)]) assert.ok(!isModelGlob(bad), JSON.stringify(bad));
    for (const good of ['*', 'gpt-4o', 'gpt-4o*', 'ft:gpt-4o-mini:org::id', 'openai/gpt-4o:free', 'claude@2024', 'a+b']) assert.ok(isModelGlob(good), good);
  });

  it('tells exact names from globs', () => {
    assert.ok(isExactModel('gpt-4o'));
    assert.ok(!isExactModel('gpt-4o*'));
  });

  it('compiles a list once: "*" serves everything, otherwise any glob of the list', () => {
    assert.ok(new ModelMatcher(['*']).matches('anything at all'));
    const matcher = new ModelMatcher(['gpt-4o', 'o3*', 'text-embedding-3-*']);
    assert.ok(matcher.matches('gpt-4o'));
    assert.ok(!matcher.matches('gpt-4o-mini'));
    assert.ok(matcher.matches('o3-mini'));
    assert.ok(matcher.matches('text-embedding-3-small'));
    assert.deepEqual(matcher.exact, ['gpt-4o']);
  });
});
