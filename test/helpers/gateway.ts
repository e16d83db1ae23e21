import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { tempConfigDir } from './temp-config.js';

export { tempConfigDir };

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(REPO_ROOT, 'bin', 'openai-api.js');

export interface TestGateway {
  url: string;
  /** The directory holding its config.json (rewrite it, then reload). */
  cwd: string;
  /** The admin API's base URL, when ADMIN_TOKEN is set. */
  adminUrl: string | undefined;
  app: FastifyInstance;
  gateway: Gateway;
  config: Config;
  /** Every log line the gateway wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Every log line as raw text (for secret scans). */
  logText(): string;
  close(): Promise<void>;
}

/**
 * The real gateway in this process, on a free loopback port, logging into memory, with its own
 * SQLite database in a temp directory (or the DATABASE_URL given).
 */
export async function startTestGateway(env: Record<string, string>, fileConfig?: Record<string, unknown>): Promise<TestGateway> {
  const cwd = tempConfigDir(fileConfig);
  const options = { env: { HOST: '127.0.0.1', PORT: '0', ADMIN_PORT: '0', DATABASE_URL: `sqlite:${cwd}/gateway.sqlite`, USAGE_FLUSH_INTERVAL: '0.05', ...env }, cwd };
  const config = loadConfig(options);
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0));
      callback();
    },
  });
  const logger = createLogger(config.log.level === 'silent' ? 'info' : config.log.level, destination);
  const gateway = await createGateway(config, logger, () => loadConfig(options));
  const app = gateway.app;
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const adminUrl = gateway.admin ? await gateway.admin.listen({ host: '127.0.0.1', port: 0 }) : undefined;
  const logs: Array<Record<string, unknown>> = [];
  return {
    url,
    cwd,
    adminUrl,
    app,
    gateway,
    config,
    get logs() {
      logs.length = 0;
      for (const line of lines) logs.push(JSON.parse(line) as Record<string, unknown>);
      return logs;
    },
    logText: () => lines.join('\n'),
    close: () => gateway.close(),
  };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `openai-api` command to completion (or until timeoutMs, then kills it). */
export function runCli(args: string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? tempConfigDir(), env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The environment a spawned gateway sees: only PATH and what the test sets, so the developer's own variables cannot leak in. */
export function cleanEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env };
}

export interface SpawnedGateway {
  child: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the built gateway as its own process and waits for its "listening" log line. */
export function spawnGateway(options: { env?: Record<string, string>; cwd?: string; args?: string[] } = {}): Promise<SpawnedGateway> {
  const child = spawn(process.execPath, [BIN, ...(options.args ?? [])], { cwd: options.cwd ?? tempConfigDir(), env: cleanEnv({ HOST: '127.0.0.1', PORT: '0', ...options.env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start in time; stderr: ${stderr}; stdout: ${stdout}`));
    }, 15_000);
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let listening = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // Only until it listens: matching the whole, growing output on every chunk is quadratic (soak tests log a lot).
      if (listening) return;
      const match = /"url":"(http:\/\/[^"]+)".*"msg":"openai-api listening"/.exec(stdout);
      if (match) {
        listening = true;
        clearTimeout(timer);
        resolve({ child, url: match[1]!, stdout: () => stdout, stderr: () => stderr, exited });
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
}
