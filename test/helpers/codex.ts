import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OFFLINE_ENV, runAgentProcess, type AgentProcessResult } from './agent-process.js';

/**
 * The real Codex CLI (`@openai/codex`, a devDependency pinned to an exact version) run
 * non-interactively with `codex exec` against a local base URL, as
 * ../shared/reference/agent-clients.md describes: a throwaway HOME/CODEX_HOME, a custom model
 * provider in config.toml, and an environment that can reach nothing but loopback.
 */

export interface CodexRun {
  /** The provider's base URL, with `/v1`: a fake upstream's `url` or `${gateway.url}/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer` (the provider's `env_key`). */
  apiKey: string;
  prompt: string;
  model?: string;
  /** The provider's `supports_websockets`: Codex then opens a WebSocket on `/v1/responses` first. */
  websockets?: boolean;
  /** Killed (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  /** Extra lines for the `[model_providers.gateway]` table, e.g. `request_max_retries = 0`. */
  providerToml?: string;
  /** Extra environment variables, e.g. `RUST_LOG`. */
  env?: Record<string, string>;
}

export type CodexResult = AgentProcessResult;

const ENV_KEY = 'GATEWAY_APP_KEY';

const TARGETS: Record<string, [pkg: string, triple: string]> = {
  'linux-x64': ['@openai/codex-linux-x64', 'x86_64-unknown-linux-musl'],
  'linux-arm64': ['@openai/codex-linux-arm64', 'aarch64-unknown-linux-musl'],
  'darwin-x64': ['@openai/codex-darwin-x64', 'x86_64-apple-darwin'],
  'darwin-arm64': ['@openai/codex-darwin-arm64', 'aarch64-apple-darwin'],
};

/**
 * The native binary the `codex` wrapper would exec (spawned directly so a timeout kills Codex
 * itself, not a Node wrapper). Throws when it is not installed.
 */
export function codexBinary(): string {
  const target = TARGETS[`${process.platform}-${process.arch}`];
  if (!target) throw new Error(`Codex CLI: no native binary for ${process.platform}-${process.arch}`);
  const [pkg, triple] = target;
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`Codex CLI is not installed: ${pkg} (the optional dependency of @openai/codex) is missing; run npm install`);
  }
  const binary = join(root, 'vendor', triple, 'bin', 'codex');
  if (!existsSync(binary)) throw new Error(`Codex CLI is not installed: ${binary} is missing; run npm install`);
  return binary;
}

/** The config.toml of a run: one custom provider, no update checks, no analytics. */
export function codexConfig(run: Pick<CodexRun, 'baseUrl' | 'model' | 'websockets' | 'providerToml'>): string {
  return [
    `model = ${JSON.stringify(run.model ?? 'gpt-4o-mini')}`,
    'model_provider = "gateway"',
    'check_for_update_on_startup = false',
    '[analytics]',
    'enabled = false',
    '[model_providers.gateway]',
    'name = "openai-api gateway"',
    `base_url = ${JSON.stringify(run.baseUrl)}`,
    `env_key = "${ENV_KEY}"`,
    'wire_api = "responses"',
    `supports_websockets = ${run.websockets === true}`,
    run.providerToml ?? '',
    '',
  ].join('\n');
}

/**
 * Runs `codex exec PROMPT` to completion (or the timeout). Throws, with its stderr, only when
 * Codex cannot be started; a failing run is a result with a non-zero code.
 */
export async function runCodex(run: CodexRun): Promise<CodexResult> {
  const binary = codexBinary();
  const home = mkdtempSync(join(tmpdir(), 'openai-api-codex-'));
  const codexHome = join(home, '.codex');
  const work = join(home, 'work');
  mkdirSync(codexHome);
  mkdirSync(work);
  writeFileSync(join(codexHome, 'config.toml'), codexConfig(run));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    CODEX_HOME: codexHome,
    [ENV_KEY]: run.apiKey,
    ...OFFLINE_ENV,
    ...run.env,
  };
  const args = ['exec', '--strict-config', '--skip-git-repo-check', '--ephemeral', '--sandbox', 'read-only', '--color', 'never', '-C', work, run.prompt];
  return runAgentProcess('Codex CLI', binary, args, { cwd: work, env, home, killAfterMs: run.timeoutMs ?? 60_000 });
}
