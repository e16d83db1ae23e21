import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { objectReferences } from '../../../src/ownership/references.js';

describe('objectReferences', () => {
  it('finds the objects a body names at any depth', () => {
    const body = {
      previous_response_id: 'resp_1',
      input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file-1' }] }],
      tools: [{ type: 'file_search', vector_store_ids: ['vs_1', 'vs_2'] }, { type: 'code_interpreter', container: { type: 'auto', file_ids: ['file-2'] } }],
      conversation: { id: 'conv_1' },
    };
    assert.deepEqual(
      objectReferences(body).map((reference) => `${reference.kind}:${reference.id}`).sort(),
      ['conversation:conv_1', 'file:file-1', 'file:file-2', 'response:resp_1', 'vector_store:vs_1', 'vector_store:vs_2'],
    );
  });

  it('does not read ids out of metadata maps, which the API never resolves (Codex sends client_metadata.thread_id)', () => {
    const body = { model: 'gpt-5-codex', client_metadata: { thread_id: '0199a-session' }, metadata: { file_id: 'mine', thread_id: 'x' }, previous_response_id: 'resp_2' };
    assert.deepEqual(objectReferences(body), [{ kind: 'response', id: 'resp_2' }]);
  });
});
