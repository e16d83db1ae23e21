import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { knownEndpoints, type Endpoint } from '../../../src/policy/endpoints.js';

// SECURITY.md's "Endpoint policy" renders the endpoint table as Markdown tables with this header,
// one row per endpoint: ✓ / ✗ for what the endpoint lets the gateway enforce, `—` where a cell
// does not apply.
const HEADER = ['endpoint', 'body', 'model', 'models', 'budget', 'ceiling', 'persona', 'object', 'refs'];

const mark = (holds: boolean): string => (holds ? '✓' : '✗');

/** The cells SECURITY.md must show for an endpoint, in HEADER order. */
function expectedCells(endpoint: Endpoint): string[] {
  const model = endpoint.modelAt === undefined ? '—' : `\`${endpoint.modelAt}\`${endpoint.defaultModel === undefined ? '' : `, default \`${endpoint.defaultModel}\``}`;
  const { models, budget, ceiling, persona } = endpoint.enforces;
  const object = endpoint.object === undefined ? '—' : `${endpoint.object.does} \`${endpoint.object.kind}\``;
  return [`\`${endpoint.name}\``, endpoint.body, model, mark(models), mark(budget), mark(ceiling), mark(persona), object, endpoint.references ? '✓' : '—'];
}

const cellsOf = (line: string): string[] => line.slice(1, -1).split('|').map((cell) => cell.trim());

/** The lines of a `### ` section, up to the next heading of the same or a higher level. */
function section(doc: string, heading: string): string[] {
  const lines = doc.split('\n');
  const start = lines.indexOf(heading);
  assert.notEqual(start, -1, `SECURITY.md has no "${heading}" section`);
  const end = lines.findIndex((line, i) => i > start && /^#{1,3} /.test(line));
  return lines.slice(start + 1, end === -1 ? undefined : end);
}

it('SECURITY.md renders exactly the endpoint table, with the same enforcement and object actions', () => {
  const doc = readFileSync(new URL('../../../SECURITY.md', import.meta.url), 'utf8');
  const lines = section(doc, '### Endpoint policy');

  const headers = lines.filter((line) => line.startsWith('| endpoint |'));
  assert.ok(headers.length > 0, 'the Endpoint policy section has no endpoint table');
  for (const header of headers) assert.deepEqual(cellsOf(header.trimEnd()), HEADER, 'an endpoint table has other columns');

  const rows = new Map<string, string[]>();
  for (const line of lines) {
    // Every row that names a /v1 endpoint, so a malformed one fails here rather than going unseen.
    if (!/^\| `[A-Z]+ \/v1\//.test(line)) continue;
    const cells = cellsOf(line.trimEnd());
    assert.equal(cells.length, HEADER.length, `row with ${cells.length} cells: ${line}`);
    const name = cells[0]!.replace(/^`|`$/g, '');
    assert.ok(!rows.has(name), `${name} is listed twice`);
    rows.set(name, cells);
  }

  const endpoints = knownEndpoints();
  const known = endpoints.map((endpoint) => endpoint.name).sort();
  const documented = [...rows.keys()].sort();
  assert.deepEqual(
    { missingFromDocs: known.filter((name) => !rows.has(name)), notInCode: documented.filter((name) => !known.includes(name)) },
    { missingFromDocs: [], notInCode: [] },
  );
  for (const endpoint of endpoints) assert.deepEqual(rows.get(endpoint.name), expectedCells(endpoint), endpoint.name);
});
