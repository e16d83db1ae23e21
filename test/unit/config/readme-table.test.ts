import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { FIELDS } from '../../../src/config/index.js';

it('the README configuration tables list every config key with its environment variables', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  for (const [key, spec] of Object.entries(FIELDS)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${key}\` |`));
    assert.ok(row, `README has a row for ${key}`);
    for (const name of spec.env) assert.ok(row.includes(`\`${name}\``), `README row for ${key} names ${name}`);
  }
});
