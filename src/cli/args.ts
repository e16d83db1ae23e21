export class UsageError extends Error {}

export interface CliArgs {
  command: 'serve';
  config: string | undefined;
  help: boolean;
  version: boolean;
}

/** Parses the serve command line; unknown flags are errors, never ignored. */
export function parseArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = { command: 'serve', config: undefined, help: false, version: false };
  const rest = [...argv];
  if (rest[0] === 'serve') rest.shift();
  while (rest.length > 0) {
    const arg = rest.shift()!;
    if (arg === '--help' || arg === '-h') args.help = true;
    else if (arg === '--version' || arg === '-v') args.version = true;
    else if (arg === '--config' || arg === '-c') {
      const value = rest.shift();
      if (value === undefined || value.startsWith('-')) throw new UsageError('--config needs a file path');
      args.config = value;
    } else if (arg.startsWith('--config=')) args.config = arg.slice('--config='.length);
    else throw new UsageError(arg.startsWith('-') ? `unknown option ${arg}` : `unknown command "${arg}"`);
  }
  return args;
}
