import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { ERROR_CATALOGUE } from '../../../src/errors/index.js';

it('docs/errors.md lists exactly the catalogue, with the same status, type and description', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const match = /^\| `([a-z_]+)` \| (\d+) \| ([a-z_]+) \| (.*) \|$/.exec(line);
    if (match) rows.set(match[1]!, [match[2]!, match[3]!, match[4]!]);
  }
  assert.deepEqual([...rows.keys()].sort(), Object.keys(ERROR_CATALOGUE).sort());
  for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
    assert.deepEqual(rows.get(code), [String(spec.status), spec.type, spec.description], code);
  }
});
