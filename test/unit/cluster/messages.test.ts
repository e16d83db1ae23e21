import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeKeyChange, decodeMark, decodeVerdict, encodeKeyChange, encodeMark, encodeVerdict, MAX_COOLING_MS, newInstanceId } from '../../../src/cluster/messages.js';
import type { KeyVerdict } from '../../../src/upstream/key-verdict.js';

describe('cluster messages', () => {
  const from = newInstanceId();

  it('round-trips key changes and verdicts', () => {
    for (const id of ['key_4fZ0cAbCdEfGhIjKl', undefined]) assert.deepEqual(decodeKeyChange(encodeKeyChange({ from, id })), { from, id });
    const verdicts: KeyVerdict[] = [
      { upstream: 'openai', key: '0123456789abcdef', state: 'disabled', status: 401 },
      { upstream: 'azure east', key: 'fedcba9876543210', state: 'cooling', ms: 30_000 },
    ];
    for (const verdict of verdicts) {
      assert.deepEqual(decodeVerdict(encodeVerdict(from, verdict)), { from, verdict });
      assert.deepEqual(decodeMark(verdict.upstream, verdict.key, encodeMark(verdict), 30_000), verdict);
    }
  });

  it('drops what does not fit exactly: extra fields, other versions, secrets in disguise, over-long rests', () => {
    const rejected = [
      '',
      'null',
      '{"v":1,"from":"a","scope":"key","id":"key_1","enabled":true}',
      '{"v":2,"from":"a","scope":"all"}',
      '{"v":1,"from":"a","scope":"key","id":"oa-has a space"}',
      '{"v":1,"from":"a","upstream":"u","key":"sk-live-0123456789","state":"disabled","status":401}',
      '{"v":1,"from":"a","upstream":"u","key":"0123456789abcdef","state":"disabled","status":500}',
      `{"v":1,"from":"a","upstream":"u","key":"0123456789abcdef","state":"cooling","ms":${MAX_COOLING_MS + 1}}`,
      `{"v":1,"from":"a","scope":"key","id":"${'a'.repeat(2000)}"}`,
    ];
    for (const message of rejected) assert.equal(decodeKeyChange(message) ?? decodeVerdict(message), undefined, message);
    assert.equal(decodeMark('u', '0123456789abcdef', '{"v":1,"state":"disabled","status":200}', 1000), undefined);
    assert.deepEqual(decodeMark('u', '0123456789abcdef', '{"v":1,"state":"cooling"}', 10 * MAX_COOLING_MS), { upstream: 'u', key: '0123456789abcdef', state: 'cooling', ms: MAX_COOLING_MS });
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        decodeKeyChange(text);
        decodeVerdict(text);
        decodeMark('u', '0123456789abcdef', text, 1000);
      }),
    );
  });
});
