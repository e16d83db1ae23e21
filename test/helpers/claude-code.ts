import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OFFLINE_ENV, runAgentProcess, type AgentProcessResult } from './agent-process.js';

/**
 * The real Claude Code (`@anthropic-ai/claude-code`, a devDependency pinned to an exact version
 * whose npm package ships its runnable `cli.js`) run non-interactively with `claude -p` against
 * a local base URL, as ../shared/reference/agent-clients.md describes: a throwaway HOME and
 * CLAUDE_CONFIG_DIR, non-essential traffic off, one retry at most, no tools, one turn, and an
 * environment that can reach nothing but loopback.
 */

export interface ClaudeCodeRun {
  /** `ANTHROPIC_BASE_URL`, without `/v1`: a fake's `origin` or the gateway's `url`. */
  baseUrl: string;
  /** `ANTHROPIC_API_KEY` (sent as `x-api-key`), or `ANTHROPIC_AUTH_TOKEN` with `authToken`. */
  apiKey: string;
  prompt: string;
  /** `--model`; default `claude-sonnet-4-5`. */
  model?: string;
  /** Send the key as `ANTHROPIC_AUTH_TOKEN`: Claude Code then sends `Authorization: Bearer` instead of `x-api-key`. */
  authToken?: boolean;
  /** Claude Code's API timeout (`API_TIMEOUT_MS`), default 60 s; the process is killed (SIGKILL) 5 s after it. */
  timeoutMs?: number;
  /** Extra environment variables, e.g. `ANTHROPIC_LOG`. */
  env?: Record<string, string>;
}

export interface ClaudeCodeResult extends AgentProcessResult {
  /** stdout parsed (`--output-format json`: `{type: "result", is_error, result, usage, …}`), when it is JSON. */
  json?: Record<string, unknown>;
}

/** The `cli.js` the `claude` bin runs. Throws when the package is not installed or ships no cli.js. */
export function claudeCodeCli(): string {
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve('@anthropic-ai/claude-code/package.json'));
  } catch {
    throw new Error('Claude Code is not installed: @anthropic-ai/claude-code (a devDependency) is missing; run npm install');
  }
  const cli = join(root, 'cli.js');
  if (!existsSync(cli)) throw new Error(`Claude Code is not runnable: ${cli} is missing (versions after 2.1.112 ship a native binary instead; keep the pinned version)`);
  return cli;
}

/** The environment of a run: only what Claude Code needs, pointed at `baseUrl`, with every switch that keeps it offline. */
export function claudeCodeEnv(run: Pick<ClaudeCodeRun, 'baseUrl' | 'apiKey' | 'authToken' | 'timeoutMs' | 'env'>, home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    CLAUDE_CONFIG_DIR: join(home, '.claude'),
    ANTHROPIC_BASE_URL: run.baseUrl,
    ...(run.authToken ? { ANTHROPIC_AUTH_TOKEN: run.apiKey } : { ANTHROPIC_API_KEY: run.apiKey }),
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_ERROR_REPORTING: '1',
    // Without it a refused request is retried with backoff for minutes.
    CLAUDE_CODE_MAX_RETRIES: '1',
    API_TIMEOUT_MS: String(run.timeoutMs ?? 60_000),
    CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK: '1',
    ...OFFLINE_ENV,
    ...run.env,
  };
}

/**
 * Runs `claude -p PROMPT --output-format json` to completion (or the timeout), stdin from
 * /dev/null. Throws, with its stderr, only when Claude Code cannot be started; a failing run is a
 * result with a non-zero code (and `json.is_error`).
 */
export async function runClaudeCode(run: ClaudeCodeRun): Promise<ClaudeCodeResult> {
  const cli = claudeCodeCli();
  const home = mkdtempSync(join(tmpdir(), 'openai-api-claude-'));
  const work = join(home, 'work');
  mkdirSync(join(home, '.claude'));
  mkdirSync(work);
  const args = [cli, '-p', run.prompt, '--model', run.model ?? 'claude-sonnet-4-5', '--max-turns', '1', '--output-format', 'json', '--tools', '', '--no-session-persistence'];
  const result = await runAgentProcess('Claude Code', process.execPath, args, { cwd: work, env: claudeCodeEnv(run, home), home, killAfterMs: (run.timeoutMs ?? 60_000) + 5_000 });
  let json: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(result.stdout.trim());
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return json === undefined ? result : { ...result, json };
}
