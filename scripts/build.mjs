// `npm run build`: compiles src/ into dist/ (tsc -p tsconfig.build.json), deletes compiled files
// whose source is gone (so `npm pack` ships no dead modules), bundles the admin web console
// (web/ → dist/console/, esbuild: no CDN at run time), and stamps a successful build.
// `--if-stale` (prestart, prepare) compiles only when a source, a tsconfig or package.json changed
// since the stamp: an up-to-date start costs a directory walk (milliseconds) instead of a
// TypeScript run (seconds; even `tsc --build` spends ~0.5 s deciding there is nothing to do).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const src = join(root, 'src');
const stamp = join(dist, '.build-stamp');
const web = join(root, 'web');
const consoleDir = join(dist, 'console');
// Directories count too: deleting or renaming a source changes its directory's mtime.
const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json', ...(existsSync(web) ? ['web'] : [])];

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
    if (path === consoleDir) {
      kept++; // the console's bundle has no src/ counterpart
    } else if (entry.isDirectory()) {
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

/**
 * Bundles web/ into dist/console/: the script and the stylesheet named by their content hash
 * (served as immutable), and index.html pointing at them (served no-cache).
 */
async function bundleConsole() {
  if (!existsSync(web)) {
    console.error('openai-api: web/ is missing, so the admin console is not built (it answers 503).');
    return true;
  }
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    console.error('openai-api: esbuild is not installed to bundle the admin console (devDependencies omitted?): run "npm install" in the checkout.');
    return false;
  }
  rmSync(consoleDir, { recursive: true, force: true });
  mkdirSync(consoleDir, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { app: 'web/src/main.tsx', app_style: 'web/src/style.css' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome109', 'firefox115', 'safari15'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: consoleDir,
    entryNames: '[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
  }).catch(() => undefined);
  if (result === undefined) return false;
  const outputs = Object.entries(result.metafile.outputs);
  const named = (entry) => outputs.find(([, output]) => output.entryPoint === entry)?.[0].split('/').pop();
  const page = readFileSync(join(web, 'index.html'), 'utf8').replace('%APP_JS%', named('web/src/main.tsx')).replace('%APP_CSS%', named('web/src/style.css'));
  writeFileSync(join(consoleDir, 'index.html'), page);
  return true;
}

// `--console-only`: rebundles web/ alone (working on the console; the stamp is left as it was).
if (process.argv.includes('--console-only')) process.exit((await bundleConsole()) ? 0 : 1);

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
if (!(await bundleConsole())) process.exit(1);
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
