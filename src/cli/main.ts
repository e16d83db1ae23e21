import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { ConfigError } from '../config/index.js';
import { parseArgs, UsageError } from './args.js';
import type { CommandIo } from './command.js';

const HELP = `openai-api — a self-hosted gateway for the OpenAI API

Usage:
  openai-api [serve] [--config PATH]   run the gateway (default command)
  openai-api keys create NAME [flags]  give an app its own key, models and limits
  openai-api keys list | show NAME | update NAME [flags] | disable NAME | enable NAME
  openai-api keys rotate NAME | delete NAME [--yes]
  openai-api usage [--key NAME] [--since DATE] [--until DATE] [--by model|day|key] [--json]
  openai-api conversations list | show ID | delete ID  --key NAME   what /api/chat remembers
  openai-api --help | --version

"openai-api keys --help" and "openai-api usage --help" list their flags.

Configuration comes from config.json in the working directory (or --config PATH / CONFIG_FILE),
with environment variables winning over the file. See the README for every key.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function askOnTerminal(question: string): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await terminal.question(question)).trim());
  } finally {
    terminal.close();
  }
}

function processIo(): CommandIo {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    confirm: process.stdin.isTTY && process.stderr.isTTY ? askOnTerminal : undefined,
  };
}

/** Runs the command line; resolves to the exit code, or -1 while the gateway keeps serving. */
export async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`openai-api: ${error.message}\nRun "openai-api --help" for usage.\n`);
      return 2;
    }
    throw error;
  }
  // Imported on demand: `keys` and `usage` need neither Fastify nor undici, and start faster.
  if (args.command !== 'serve') {
    const run =
      args.command === 'keys'
        ? (await import('./keys-command.js')).keysCommand
        : args.command === 'conversations'
          ? (await import('./conversations-command.js')).conversationsCommand
          : (await import('./usage-command.js')).usageCommand;
    return run(args.argv, args.config, processIo());
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  try {
    const { closeOnSignals, startGateway } = await import('../main.js');
    const gateway = await startGateway({ configPath: args.config });
    closeOnSignals(gateway);
    return -1;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      process.stderr.write(`openai-api: cannot listen: ${(error as Error).message}\n`);
      return 1;
    }
    throw error;
  }
}
