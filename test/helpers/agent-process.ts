import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';

/** A proxy nobody listens on: anything not for loopback fails at once instead of leaving the machine. */
const REFUSING_PROXY = 'http://127.0.0.1:9';

/**
 * The environment variables that keep a real agent CLI (Codex, Claude Code) on this machine: every
 * proxy variable points at a port nobody listens on, loopback excepted, and no colours.
 */
export const OFFLINE_ENV: Readonly<Record<string, string>> = Object.freeze({
  HTTPS_PROXY: REFUSING_PROXY,
  HTTP_PROXY: REFUSING_PROXY,
  ALL_PROXY: REFUSING_PROXY,
  https_proxy: REFUSING_PROXY,
  http_proxy: REFUSING_PROXY,
  all_proxy: REFUSING_PROXY,
  NO_PROXY: '127.0.0.1,localhost',
  no_proxy: '127.0.0.1,localhost',
  NO_COLOR: '1',
  TERM: 'dumb',
});

export interface AgentProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
  timedOut: boolean;
}

/**
 * Runs an agent CLI to completion, stdin from /dev/null, killing it (SIGKILL) after `killAfterMs`;
 * `home` (its throwaway HOME) is removed when it ends. Rejects, with its stderr, only when it
 * cannot be started; a failing run is a result with a non-zero code.
 */
export function runAgentProcess(name: string, command: string, args: string[], options: { cwd: string; env: Record<string, string>; home: string; killAfterMs: number }): Promise<AgentProcessResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.killAfterMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      rmSync(options.home, { recursive: true, force: true });
      reject(new Error(`${name} could not be started (${command}): ${error.message}; stderr: ${stderr}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      rmSync(options.home, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr, elapsedMs: Date.now() - started, timedOut });
    });
  });
}
