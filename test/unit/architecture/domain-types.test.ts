import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The key settings every folder shares are declared once, in src/domain/key-settings.ts, and
 * imported everywhere else: a second declaration drifts (a fourth budget period added to one
 * copy and not the other) and pulls the folder that owns it into the others' import graph.
 */

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src');
const HOME = 'domain/key-settings.ts';

/** What declaring one of the shared types looks like: by name, or by spelling out its values. */
const DECLARATIONS: ReadonlyArray<[string, RegExp]> = [
  ['PersonaMode', /\b(?:type|interface)\s+PersonaMode\b|'prepend'\s*\|\s*'replace'\s*\|\s*'off'/],
  ['BudgetPeriod', /\b(?:type|interface)\s+BudgetPeriod\b|'day'\s*\|\s*'month'\s*\|\s*'total'/],
  ['KeySource', /\b(?:type|interface)\s+KeySource\b|'config'\s*\|\s*'cli'\s*\|\s*'admin'/],
  ['KeyDefaults', /\b(?:type|interface)\s+KeyDefaults\b/],
  ['KeyLimits', /\b(?:type|interface)\s+KeyLimits\b/],
  ['KeySettings', /\b(?:type|interface)\s+KeySettings\b/],
];

/**
 * Declarations outside domain/ being removed (issue 11), as "file: Type". The test fails on any
 * other, and on an entry that is gone: delete it then.
 */
const KNOWN_REDECLARATIONS: readonly string[] = [];

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

it('declares the shared key settings types only in domain/key-settings.ts', () => {
  const found: string[] = [];
  const home = new Set<string>();
  for (const file of sourceFiles(SRC)) {
    const path = relative(SRC, file).replaceAll('\\', '/');
    // Comments may name the values; only code declares them.
    const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    for (const [type, pattern] of DECLARATIONS) {
      if (!pattern.test(code)) continue;
      if (path === HOME) home.add(type);
      else found.push(`${path}: ${type}`);
    }
  }
  assert.deepEqual([...home].sort(), DECLARATIONS.map(([type]) => type).sort(), `${HOME} declares every shared type`);
  const unknown = found.filter((entry) => !KNOWN_REDECLARATIONS.includes(entry));
  assert.deepEqual(unknown, [], 'declared outside domain/: import it from src/domain/key-settings.ts instead');
  const gone = KNOWN_REDECLARATIONS.filter((entry) => !found.includes(entry));
  assert.deepEqual(gone, [], 'no longer declared there: remove from KNOWN_REDECLARATIONS');
});
