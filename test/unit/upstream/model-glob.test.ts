import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isExactModel, isModelGlob } from '../../../src/upstream/model-glob.js';

// Matching is src/domain/glob.ts (test/unit/domain/glob.test.ts); these are the rules a configured glob must meet.
describe('model glob rules', () => {
  it('refuses globs that could never match a model name: empty, spaces, ?, brackets, quotes', () => {
    for (const bad of ['', ' ', 'gpt 4o', 'gpt-4?', '[abc]', '"gpt"', 'gpt-4o\n', 'x'.repeat(257)]) assert.ok(!isModelGlob(bad), JSON.stringify(bad));
    for (const good of ['*', 'gpt-4o', 'gpt-4o*', 'ft:gpt-4o-mini:org::id', 'openai/gpt-4o:free', 'claude@2024', 'a+b']) assert.ok(isModelGlob(good), good);
  });

  it('tells exact names from globs', () => {
    assert.ok(isExactModel('gpt-4o'));
    assert.ok(!isExactModel('gpt-4o*'));
  });
});
