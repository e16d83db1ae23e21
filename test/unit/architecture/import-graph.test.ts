import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * Folders under src/ depend on each other one way (STYLE.md, convention 2): the folder-level
 * import graph has no cycles. A folder is the first directory under src/; files directly in
 * src/ (main, app, gateway, runtime) are the "root", which assembles everything: its imports
 * are not edges, so it cannot close a cycle.
 *
 * `import type` counts like any import. A type-only import erases at run time, but it still
 * couples the folders by design: the importer breaks when the other folder changes the type,
 * and the type's owner is in the wrong place (the cure is the same — move the type to the folder
 * both depend on, usually domain/). Re-exports and dynamic `import()` count too.
 */

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src');
const ROOT = 'root';

/**
 * Folder edges that still close a cycle and are being removed (issue 11). Each entry names the
 * files that make it. The test fails on any cycle that does not run through one of these, and on
 * an entry that no longer exists or no longer closes a cycle: delete it then.
 */
const KNOWN_BACK_EDGES: readonly string[] = [];

interface Edge {
  from: string;
  to: string;
  /** "src/a/x.ts → src/b/y.ts" for each import that makes the edge. */
  evidence: string[];
}

function sourceFiles(directory: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) files.push(path);
  }
  return files;
}

function folderOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  return parts.length > 1 ? parts[0]! : ROOT;
}

/** Folder → folder edges, with the imports that make each one. */
function folderGraph(): Map<string, Map<string, Edge>> {
  const graph = new Map<string, Map<string, Edge>>();
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    if (!graph.has(from)) graph.set(from, new Map());
    if (from === ROOT) continue;
    for (const { fileName } of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = resolve(dirname(file), fileName);
      if (relative(SRC, target).startsWith('..')) continue;
      const to = folderOf(target);
      if (to === from) continue;
      const edges = graph.get(from)!;
      const edge = edges.get(to) ?? { from, to, evidence: [] };
      edge.evidence.push(`src/${relative(SRC, file)} → src/${relative(SRC, target).replace(/\.js$/, '.ts')}`);
      edges.set(to, edge);
    }
  }
  return graph;
}

const name = (edge: { from: string; to: string }): string => `${edge.from} → ${edge.to}`;

/** One cycle of the graph as a list of edges, or undefined when there is none. */
function findCycle(graph: Map<string, Map<string, Edge>>, skip: ReadonlySet<string>): Edge[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: Edge[] = [];
  const visit = (folder: string): Edge[] | undefined => {
    state.set(folder, 'open');
    for (const edge of graph.get(folder)?.values() ?? []) {
      if (skip.has(name(edge))) continue;
      if (state.get(edge.to) === 'open') {
        const start = path.findIndex((step) => step.from === edge.to);
        return [...(start < 0 ? [] : path.slice(start)), edge];
      }
      if (state.get(edge.to) === 'done') continue;
      path.push(edge);
      const cycle = visit(edge.to);
      if (cycle) return cycle;
      path.pop();
    }
    state.set(folder, 'done');
    return undefined;
  };
  for (const folder of [...graph.keys()].sort()) {
    if (state.has(folder)) continue;
    const cycle = visit(folder);
    if (cycle) return cycle;
  }
  return undefined;
}

function reaches(graph: Map<string, Map<string, Edge>>, from: string, to: string): boolean {
  const seen = new Set<string>([from]);
  const queue = [from];
  while (queue.length > 0) {
    const folder = queue.shift()!;
    if (folder === to) return true;
    for (const next of graph.get(folder)?.keys() ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return false;
}

const describeCycle = (cycle: Edge[]): string =>
  `${[cycle[0]!.from, ...cycle.map((edge) => edge.to)].join(' → ')}\n` + cycle.map((edge) => `  ${name(edge)}:\n${edge.evidence.map((line) => `    ${line}`).join('\n')}`).join('\n');

describe('the import graph between folders of src/', () => {
  const graph = folderGraph();

  it('has no cycle (apart from the back-edges being removed)', () => {
    const cycle = findCycle(graph, new Set(KNOWN_BACK_EDGES));
    if (cycle) assert.fail(`folders import each other in a cycle:\n${describeCycle(cycle)}`);
  });

  it('lists as known back-edges only edges that exist and still close a cycle', () => {
    for (const known of KNOWN_BACK_EDGES) {
      const [from, to] = known.split(' → ') as [string, string];
      assert.ok(graph.get(from)?.has(to), `${known} is gone: remove it from KNOWN_BACK_EDGES`);
      assert.ok(reaches(graph, to, from), `${known} no longer closes a cycle: remove it from KNOWN_BACK_EDGES`);
    }
  });

  it('finds a cycle when there is one (the check itself can fail)', () => {
    const edge = (from: string, to: string): [string, Edge] => [to, { from, to, evidence: [`src/${from}/x.ts → src/${to}/y.ts`] }];
    const cyclic = new Map([
      ['a', new Map([edge('a', 'b')])],
      ['b', new Map([edge('b', 'c')])],
      ['c', new Map([edge('c', 'a'), edge('c', 'd')])],
      ['d', new Map<string, Edge>()],
    ]);
    assert.deepEqual(findCycle(cyclic, new Set())?.map(name), ['a → b', 'b → c', 'c → a']);
    assert.equal(findCycle(cyclic, new Set(['c → a'])), undefined);
    assert.match(describeCycle(findCycle(cyclic, new Set())!), /^a → b → c → a\n {2}a → b:\n {4}src\/a\/x\.ts → src\/b\/y\.ts/);
  });
});
