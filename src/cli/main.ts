import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/index.js';
import { closeOnSignals, startGateway } from '../main.js';
import { parseArgs, UsageError } from './args.js';

const HELP = `openai-api — a self-hosted gateway for the OpenAI API

Usage:
  openai-api [serve] [--config PATH]   run the gateway (default command)
  openai-api --help | --version

Configuration comes from config.json in the working directory (or --config PATH / CONFIG_FILE),
with environment variables winning over the file. See the README for every key.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

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
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  try {
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
