#!/usr/bin/env node
// `npm run bench` (from the repo root): installs the bench's own dependencies when missing, builds
// the gateway, then measures every target in one session on loopback. `--smoke` proves the
// harness and every target answer correctly, in seconds. `--help` lists the flags.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags, USAGE } from './lib/flags.mjs';

const BENCH = fileURLToPath(new URL('./', import.meta.url));
const ROOT = join(BENCH, '..');

function run(command, args, what) {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`bench: ${what} failed (${command} ${args.join(' ')} exited ${result.status ?? result.signal})\n`);
    process.exit(1);
  }
}

/** `npm ci --prefix bench` when the bench's node_modules is missing or older than its lockfile. */
function ensureDependencies() {
  const installed = join(BENCH, 'node_modules', '.package-lock.json');
  const lock = join(BENCH, 'package-lock.json');
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) return;
  process.stdout.write('bench: installing the bench dependencies (npm ci --prefix bench)\n');
  run('npm', ['ci', '--prefix', 'bench', '--no-audit', '--no-fund'], 'installing the bench dependencies');
}

let flags;
try {
  flags = parseFlags(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`bench: ${error.message}\n${USAGE}`);
  process.exit(2);
}
if (flags.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (flags.install) ensureDependencies();
if (flags.build) run('npm', ['run', 'build', '--silent'], 'building the gateway');

// Imported only now: autocannon and Portkey live in bench/node_modules, installed just above.
const { runBench } = await import('./lib/session.mjs');
const dir = mkdtempSync(join(tmpdir(), 'openai-api-bench-'));
let code = 1;
try {
  code = await runBench(flags, dir);
} catch (error) {
  process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
} finally {
  if (flags.keep) process.stdout.write(`bench: kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
