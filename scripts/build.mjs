// `npm run build`: compiles src/ into dist/ (tsc -p tsconfig.build.json), deletes compiled files
// whose source is gone (so `npm pack` ships no dead modules), and stamps a successful build.
// `--if-stale` (prestart, prepare) compiles only when a source, a tsconfig or package.json changed
// since the stamp: an up-to-date start costs a directory walk (milliseconds) instead of a
// TypeScript run (seconds; even `tsc --build` spends ~0.5 s deciding there is nothing to do).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const src = join(root, 'src');
const stamp = join(dist, '.build-stamp');
// Directories count too: deleting or renaming a source changes its directory's mtime.
const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

function newestMtime(path) {
  const stat = statSync(path);
  let newest = stat.mtimeMs;
  if (stat.isDirectory()) for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function isFresh() {
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  return inputs.every((input) => newestMtime(join(root, input)) < built);
}

/** Deletes dist/x.js (and its .map) when src/x.ts is gone; returns whether the directory is left empty. */
function pruneOrphans(dir, relative = '') {
  let kept = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const rel = join(relative, entry.name);
    if (entry.isDirectory()) {
      if (pruneOrphans(path, rel)) rmdirSync(path);
      else kept++;
    } else if (/\.js(\.map)?$/.test(entry.name) && !existsSync(join(src, rel.replace(/\.js(\.map)?$/, '.ts')))) {
      unlinkSync(path);
    } else {
      kept++;
    }
  }
  return kept === 0;
}

function typescriptCompiler() {
  try {
    return createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

if (process.argv.includes('--if-stale')) {
  if (isFresh()) process.exit(0);
  console.error('openai-api: building dist/ (sources changed since the last build)');
}

const tsc = typescriptCompiler();
if (tsc === undefined) {
  console.error('openai-api: dist/ is missing or older than src/, and TypeScript is not installed to build it (devDependencies omitted?): run "npm install" in the checkout.');
  process.exit(1);
}
// Stamped with the time the compile started: a source saved while tsc runs makes the next start rebuild.
const started = new Date();
const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
pruneOrphans(dist);
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
