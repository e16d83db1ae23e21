import { configKeyEntries } from '../auth/key-attributes.js';
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { openDatabase, type Database } from '../storage/database.js';
import { KeysRepository } from '../storage/keys-repository.js';
import { StorageError } from '../storage/storage-error.js';
import { UsageError } from './flags.js';

/** Where a command writes, and how it asks; main() wires these to the process. */
export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
  /** Asks a yes/no question on the terminal; undefined when there is none (piped, CI, cron). */
  confirm: ((question: string) => Promise<boolean>) | undefined;
}

/** The command was well formed but cannot be done (unknown key, a config-managed key): exit code 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export interface Store {
  config: Config;
  database: Database;
  keys: KeysRepository;
}

/**
 * Runs one command and maps its failure to an exit code and a single stderr line:
 * 2 for a command line that cannot be run as written, 1 for everything that went wrong after.
 * Anything else is a bug and propagates (bin/openai-api.js prints it and exits 1).
 */
export async function runCommand(label: string, io: CommandIo, body: () => Promise<void>): Promise<number> {
  try {
    await body();
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`openai-api ${label}: ${oneLine(error.message)}\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      io.err(`${oneLine(error.message)}\n`);
      return 1;
    }
    if (error instanceof CommandError || error instanceof StorageError) {
      io.err(`openai-api ${label}: ${oneLine(error.message)}\n`);
      return 1;
    }
    throw error;
  }
}

/**
 * Loads the config, opens its database, brings the config-declared keys in (so every command
 * sees them), runs `work`, and closes the database whatever happens. Call it only once the
 * arguments are validated: it writes (the config sync).
 */
export async function withStore<T>(configPath: string | undefined, io: CommandIo, work: (store: Store) => Promise<T>): Promise<T> {
  const config = loadConfig(configPath === undefined ? {} : { configPath });
  const database = await openDatabase(config.databaseUrl);
  try {
    const keys = new KeysRepository(database);
    try {
      await keys.upsertFromConfig(configKeyEntries(config.keys));
    } catch (error) {
      // A clash between config.json and a CLI-made key must not lock the operator out of the
      // very command that resolves it (`keys delete`); the sync is all-or-nothing, so go on.
      if (!(error instanceof StorageError && error.code === 'conflict')) throw error;
      io.err(`warning: config keys not synced: ${oneLine(error.message)}\n`);
    }
    return await work({ config, database, keys });
  } finally {
    await database.close();
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
