import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { ERROR_CATALOGUE, UPSTREAM_STATUS } from '../../../src/errors/index.js';

it('docs/errors.md lists exactly the catalogue, with the same status, type, before-upstream mark and description', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const match = /^\| `([a-z_<>]+)` \| ([^|]+) \| ([^|]+) \| (yes|no) \| (.*) \|$/.exec(line);
    if (match) rows.set(match[1]!, [match[2]!, match[3]!, match[4]!, match[5]!]);
  }
  assert.deepEqual([...rows.keys()].sort(), [...Object.keys(ERROR_CATALOGUE), UPSTREAM_STATUS.code].sort());
  for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
    const before = 'refusedBeforeUpstream' in spec && spec.refusedBeforeUpstream ? 'yes' : 'no';
    assert.deepEqual(rows.get(code), [String(spec.status), spec.type, before, spec.description], code);
  }
  assert.deepEqual(rows.get(UPSTREAM_STATUS.code), [UPSTREAM_STATUS.status, UPSTREAM_STATUS.type, 'no', UPSTREAM_STATUS.description]);
});
