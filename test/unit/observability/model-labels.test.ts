import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { knownModels, MAX_KNOWN_MODELS, modelLabel, NONE, OTHER } from '../../../src/observability/model-labels.js';

describe('model labels', () => {
  const known = knownModels([['gpt-4o-mini', 'gpt-4o'], ['claude-sonnet-4-5'], ['gpt-4o-mini', 'gpt-4.1-*', '*']]);

  it('keeps a known name, folds an unknown one into `other`, and a request without a model is `none`', () => {
    assert.equal(modelLabel(known, 'gpt-4o-mini'), 'gpt-4o-mini');
    assert.equal(modelLabel(known, 'claude-sonnet-4-5'), 'claude-sonnet-4-5');
    assert.equal(modelLabel(known, 'gpt-4o-mini-2024-07-18'), OTHER, 'a dated snapshot not listed anywhere is not known');
    assert.equal(modelLabel(known, 'GPT-4O-MINI'), OTHER, 'names are exact');
    assert.equal(modelLabel(known, ''), OTHER);
    assert.equal(modelLabel(known, undefined), NONE);
  });

  it('leaves glob patterns out of the known names (they are not models)', () => {
    assert.deepEqual([...known.keys()].sort(), ['claude-sonnet-4-5', 'gpt-4o', 'gpt-4o-mini']);
    assert.equal(modelLabel(known, 'gpt-4.1-*'), OTHER);
    assert.equal(modelLabel(known, '*'), OTHER);
  });

  it('never takes `other`, `none`, empty or overlong names as model names', () => {
    const odd = knownModels([[OTHER, NONE, '', 'x'.repeat(201), 'x'.repeat(200)]]);
    assert.deepEqual([...odd.keys()], ['x'.repeat(200)]);
  });

  it('bounds the known names (a catalogue of thousands of fine-tunes keeps its first ones)', () => {
    const many = knownModels([Array.from({ length: MAX_KNOWN_MODELS + 500 }, (_, i) => `ft:gpt-4o-mini:org::${i}`)]);
    assert.equal(many.size, MAX_KNOWN_MODELS);
    assert.equal(modelLabel(many, 'ft:gpt-4o-mini:org::0'), 'ft:gpt-4o-mini:org::0');
    assert.equal(modelLabel(many, `ft:gpt-4o-mini:org::${MAX_KNOWN_MODELS}`), OTHER);
  });

  it('maps any caller-chosen name to a known name, `other` or `none`: the label takes at most |known| + 2 values', () => {
    fc.assert(
      fc.property(fc.option(fc.string(), { nil: undefined }), (model) => {
        const label = modelLabel(known, model);
        assert.ok(known.has(label) || label === OTHER || label === NONE);
        if (model !== undefined && known.has(model)) assert.equal(label, model);
      }),
    );
  });
});
