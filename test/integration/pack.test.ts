import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { cleanEnv, REPO_ROOT } from '../helpers/gateway.js';

// What a user gets from `npm pack` / `npm publish`: the tarball is packed from a copy of the
// checkout (so its prepack build cannot rewrite the dist/ that tests running beside this one are
// executing), installed as a dependency of an empty project — no devDependencies, so no
// TypeScript, and better-sqlite3 compiled from source as on a user's machine — and started.

const PACK_TIMEOUT_MS = 180_000;
const INSTALL_TIMEOUT_MS = 480_000;
const START_TIMEOUT_MS = 30_000;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, killing it after timeoutMs; never rejects, so the caller's assertion says what failed. */
function run(command: string, args: string[], options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd, env: options.env ?? npmEnv(), timeout: options.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr: error !== null && code === null ? `${stderr}\n${error.message}` : stderr });
    });
  });
}

/** The environment minus what an enclosing `npm test` exports (npm_package_*, npm_lifecycle_*, …), which would describe the checkout to the npm run here. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
}

function tail(text: string): string {
  return text.length > 4000 ? `…${text.slice(-4000)}` : text;
}

/** The files a fresh clone of the checkout would hold (tracked, plus new files not ignored), copied to dir. */
async function copyCheckout(dir: string): Promise<void> {
  const listed = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: REPO_ROOT, timeoutMs: 30_000 });
  assert.equal(listed.code, 0, `git ls-files failed: ${listed.stderr}`);
  for (const path of new Set(listed.stdout.split('\0').filter((path) => path.length > 0))) {
    // Skipped: a file deleted in the work tree but not yet in a commit, and a node_modules that is a symlink (which .gitignore's "node_modules/" does not match).
    if (!existsSync(join(REPO_ROOT, path)) || path === 'node_modules') continue;
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    cpSync(join(REPO_ROOT, path), join(dir, path));
  }
  // The build needs the devDependencies the checkout already has (TypeScript, @types).
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
}

describe('the package as npm pack ships it', { timeout: PACK_TIMEOUT_MS + INSTALL_TIMEOUT_MS + 4 * START_TIMEOUT_MS }, () => {
  const work = mkdtempSync(join(tmpdir(), 'openai-api-pack-'));
  const checkout = join(work, 'checkout');
  const packed = join(work, 'packed');
  const consumer = join(work, 'consumer');
  const bin = join(consumer, 'node_modules', '.bin', 'openai-api');
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  let contents: string[] = [];

  before(async () => {
    mkdirSync(checkout);
    mkdirSync(packed);
    mkdirSync(consumer);
    await copyCheckout(checkout);
    const pack = await run('npm', ['pack', '--pack-destination', packed], { cwd: checkout, timeoutMs: PACK_TIMEOUT_MS });
    assert.equal(pack.code, 0, `npm pack failed:\n${tail(pack.stderr)}\n${tail(pack.stdout)}`);
    const tarballs = readdirSync(packed).filter((name) => name.endsWith('.tgz'));
    assert.equal(tarballs.length, 1, `npm pack wrote ${tarballs.join(', ') || 'no tarball'}`);
    const tarball = join(packed, tarballs[0]!);
    const listing = await run('tar', ['-tzf', tarball], { cwd: packed, timeoutMs: 30_000 });
    assert.equal(listing.code, 0, listing.stderr);
    contents = listing.stdout.split('\n').filter((line) => line.length > 0).map((line) => line.replace(/^package\//, ''));

    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'openai-api-pack-consumer', version: '1.0.0', private: true }));
    const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: consumer, timeoutMs: INSTALL_TIMEOUT_MS });
    assert.equal(install.code, 0, `npm install of the tarball failed (code ${install.code}):\n${tail(install.stderr)}\n${tail(install.stdout)}`);
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  it('holds the compiled gateway, its command and example config, and no TypeScript or tests', () => {
    for (const file of ['package.json', 'bin/openai-api.js', 'dist/cli/main.js', 'dist/main.js', 'dist/app.js', 'dist/console/index.html', 'config.example.json', 'README.md']) {
      assert.ok(contents.includes(file), `${file} is missing from the tarball`);
    }
    assert.deepEqual(
      contents.filter((file) => /\.ts$/.test(file) || /^(src|test|bench|scripts)\//.test(file) || file === 'dist/.build-stamp'),
      [],
    );
    // The admin console's bundle, built from web/ (its sources stay out).
    assert.ok(contents.some((file) => /^dist\/console\/app-[A-Z0-9]+\.js$/.test(file)), 'the console script is missing');
    assert.ok(contents.some((file) => /^dist\/console\/app_style-[A-Z0-9]+\.css$/.test(file)), 'the console stylesheet is missing');
    assert.deepEqual(contents.filter((file) => file.startsWith('web/')), []);
  });

  it('installs without TypeScript and prints its version', async () => {
    assert.ok(!existsSync(join(consumer, 'node_modules', 'typescript')), 'a tarball install should not pull in TypeScript');
    const result = await run(bin, ['--version'], { cwd: consumer, timeoutMs: START_TIMEOUT_MS, env: gatewayEnv() });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${version}\n`);
  });

  it('serves /healthz on a loopback port and exits 0 on SIGTERM', async () => {
    const child = spawn(bin, ['serve'], { cwd: consumer, env: gatewayEnv({ HOST: '127.0.0.1', PORT: '0' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "openai-api listening" line within ${START_TIMEOUT_MS} ms; stderr: ${stderr}`)), START_TIMEOUT_MS);
        createInterface({ input: child.stdout }).on('line', (line) => {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'openai-api listening' && entry.url !== undefined) {
            clearTimeout(timer);
            resolve(entry.url);
          }
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`the installed gateway exited with ${code} before listening; stderr: ${stderr}`));
        });
      });
      const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(START_TIMEOUT_MS) });
      assert.equal(health.status, 200, await health.text());
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), START_TIMEOUT_MS).unref())]);
      assert.equal(code, 0, stderr);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

/** Only PATH (with this Node first, for the command's `#!/usr/bin/env node`) and what the test sets. */
function gatewayEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base = cleanEnv(env);
  return { ...base, PATH: `${dirname(process.execPath)}:${base.PATH ?? ''}` };
}
