import { UsageError } from './flags.js';

export { UsageError };

/** Commands with their own flags; everything after the command word is theirs to parse. */
export const SUBCOMMANDS = ['keys', 'usage', 'conversations'] as const;
export type Subcommand = (typeof SUBCOMMANDS)[number];

export type CliArgs =
  | { command: 'serve'; config: string | undefined; help: boolean; version: boolean }
  | { command: Subcommand; config: string | undefined; argv: string[] };

function isSubcommand(word: string): word is Subcommand {
  return (SUBCOMMANDS as readonly string[]).includes(word);
}

/**
 * Splits off the command. `serve` (the default) is parsed here; `keys` and `usage` get the rest
 * of the line. `--config` may come before the command. Unknown flags are errors, never ignored.
 */
export function parseArgs(argv: readonly string[]): CliArgs {
  const serve = { command: 'serve' as const, config: undefined as string | undefined, help: false, version: false };
  let commandSeen = false;
  const rest = [...argv];
  while (rest.length > 0) {
    const arg = rest.shift()!;
    if (arg === '--help' || arg === '-h') serve.help = true;
    else if (arg === '--version' || arg === '-v') serve.version = true;
    else if (arg === '--config' || arg === '-c') {
      const value = rest.shift();
      if (value === undefined || value.startsWith('-')) throw new UsageError('--config needs a file path');
      serve.config = value;
    } else if (arg.startsWith('--config=')) serve.config = arg.slice('--config='.length);
    else if (!commandSeen && arg === 'serve') commandSeen = true;
    else if (!commandSeen && isSubcommand(arg)) {
      // `openai-api --help keys` reads as `openai-api keys --help`.
      return { command: arg, config: serve.config, argv: serve.help ? ['--help', ...rest] : rest };
    } else throw new UsageError(arg.startsWith('-') ? `unknown option ${arg}` : `unknown command "${arg}"`);
  }
  return serve;
}
