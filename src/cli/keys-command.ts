import { attributesToSettings } from '../auth/key-attributes.js';
import { announceKeyChange } from '../cluster/announce-key-change.js';
import { generateKeySecret, hashKeySecret, keyPrefix } from '../auth/key-secret.js';
import { keyNameSchema } from '../config/key-entry.js';
import { nearestName } from '../config/near-miss.js';
import type { AppKeyRow } from '../storage/keys-repository.js';
import { CommandError, runCommand, withStore, type CommandIo, type Store } from './command.js';
import { noPositionals, onePositional, parseFlags, UsageError, type FlagSpec, type ParsedFlags } from './flags.js';
import { ATTRIBUTE_FLAGS, CLEAR_FLAG, attributesFromFlags, clearedFromFlags, updatePatch } from './key-flags.js';
import { publicKey, renderKeyDetails, renderKeyList } from './key-view.js';

const JSON_FLAG: FlagSpec = { name: 'json' };
const CONFIG_FLAG: FlagSpec = { name: 'config', value: 'PATH', short: 'c' };
const HELP_FLAG: FlagSpec = { name: 'help', short: 'h' };
const YES_FLAG: FlagSpec = { name: 'yes', short: 'y' };
const COMMON = [JSON_FLAG, CONFIG_FLAG, HELP_FLAG];

const COMMANDS = {
  create: { usage: 'keys create NAME [attribute flags] [--json]', flags: [...ATTRIBUTE_FLAGS, ...COMMON] },
  list: { usage: 'keys list [--json]', flags: COMMON },
  show: { usage: 'keys show NAME [--json]', flags: COMMON },
  update: { usage: 'keys update NAME [attribute flags] [--clear LIST] [--json]', flags: [...ATTRIBUTE_FLAGS, CLEAR_FLAG, ...COMMON] },
  disable: { usage: 'keys disable NAME', flags: COMMON },
  enable: { usage: 'keys enable NAME', flags: COMMON },
  rotate: { usage: 'keys rotate NAME [--json]', flags: COMMON },
  delete: { usage: 'keys delete NAME [--yes]', flags: [YES_FLAG, ...COMMON] },
} as const satisfies Record<string, { usage: string; flags: readonly FlagSpec[] }>;

type KeysSubcommand = keyof typeof COMMANDS;
const SUBCOMMAND_NAMES = Object.keys(COMMANDS) as KeysSubcommand[];
const HELP_HINT = 'run "openai-api keys --help" for the options';

const attributeHelp = (() => {
  const lines: Array<[string, string]> = ATTRIBUTE_FLAGS.map((flag) => [
    `  --${flag.name}${flag.value === undefined ? '' : ` ${flag.value}`}`,
    flag.kind === 'off' ? 'create the key disabled' : flag.expect,
  ]);
  lines.push([`  --${CLEAR_FLAG.name} ${CLEAR_FLAG.value}`, '(update) unset attributes, e.g. --clear rpm,budget-usd,defaults']);
  const width = Math.max(...lines.map(([synopsis]) => synopsis.length)) + 2;
  return lines.map(([synopsis, text]) => synopsis.padEnd(width) + text).join('\n');
})();

export const KEYS_HELP = `openai-api keys — app keys: each app its own key, models and limits

Usage:
  openai-api keys create NAME [attribute flags] [--json]   print the new secret once
  openai-api keys list [--json]
  openai-api keys show NAME [--json]
  openai-api keys update NAME [attribute flags] [--clear LIST] [--json]
  openai-api keys disable NAME | enable NAME
  openai-api keys rotate NAME [--json]                     new secret, the old one stops working
  openai-api keys delete NAME [--yes]

Attribute flags (the same values as a "keys" entry of config.json):
${attributeHelp}
--default-model, --temperature, --top-p, --max-tokens and the penalties are request defaults,
applied where the app leaves them out. --endpoints lets the key call endpoints beyond the
defaults, where its models, budget and ceiling may not be enforced (see SECURITY.md);
--clear endpoints takes them away again.

Every command takes --config PATH (default ./config.json, or CONFIG_FILE) to find the database
(database_url / DATABASE_URL). Keys declared in config.json are listed with source "config"
and are changed there, not here. With redis_url (REDIS_URL) set, a change is announced to the
running gateways at once; without it, or with Redis down, they pick it up within a few seconds.
`;

/** `openai-api keys …`: exit 0 done, 1 could not be done, 2 bad command line (nothing changed). */
export function keysCommand(argv: readonly string[], configPath: string | undefined, io: CommandIo): Promise<number> {
  const [word, ...rest] = argv;
  const subcommand = SUBCOMMAND_NAMES.find((name) => name === word);
  return runCommand(subcommand === undefined ? 'keys' : `keys ${subcommand}`, io, async () => {
    if (word === '--help' || word === '-h' || word === 'help') return io.out(KEYS_HELP);
    if (word === undefined) throw new UsageError(`needs a command: ${SUBCOMMAND_NAMES.join(', ')} (${HELP_HINT})`);
    if (subcommand === undefined) {
      const suggestion = nearestName(word, SUBCOMMAND_NAMES);
      throw new UsageError(`unknown command "${word}"${suggestion === undefined ? ` (expected ${SUBCOMMAND_NAMES.join(', ')})` : ` — did you mean "${suggestion}"?`}`);
    }
    const spec = COMMANDS[subcommand];
    const parsed = parseFlags(rest, spec.flags, HELP_HINT);
    if (parsed.flags.has('help')) return io.out(KEYS_HELP);
    const context: Context = { io, parsed, usage: `openai-api ${spec.usage}`, configPath: parsed.flags.get('config') ?? configPath, json: parsed.flags.has('json') };
    await HANDLERS[subcommand](context);
  });
}

interface Context {
  io: CommandIo;
  parsed: ParsedFlags;
  usage: string;
  configPath: string | undefined;
  json: boolean;
}

// Every handler checks its whole command line before withStore() opens (and writes to) the database.
const HANDLERS: Record<KeysSubcommand, (context: Context) => Promise<void>> = {
  async create(c) {
    const name = onePositional(c.parsed, 'the key name', c.usage);
    const valid = keyNameSchema.safeParse(name);
    if (!valid.success) throw new UsageError(`key name ${JSON.stringify(name)} ${valid.error.issues[0]?.message ?? 'is not valid'}`);
    const attributes = attributesFromFlags(c.parsed.flags);
    await withStore(c.configPath, c.io, async ({ keys, config }) => {
      const secret = generateKeySecret();
      const row = await keys.create({ ...attributesToSettings(attributes), name, keyHash: hashKeySecret(secret), keyPrefix: keyPrefix(secret), source: 'cli' });
      printSecret(c, row, secret, `Created key "${row.name}" (id ${row.id}, prefix ${row.keyPrefix}).`);
      await announceKeyChange(config, row.id, c.io.err);
    });
  },

  async list(c) {
    noPositionals(c.parsed, c.usage);
    await withStore(c.configPath, c.io, async ({ keys }) => {
      const rows = await keys.list();
      c.io.out(c.json ? `${JSON.stringify(rows.map(publicKey), null, 2)}\n` : renderKeyList(rows, new Date()));
    });
  },

  async show(c) {
    const name = onePositional(c.parsed, 'the key name', c.usage);
    await withStore(c.configPath, c.io, async (store) => {
      printKey(c, await requireKey(store, name));
    });
  },

  async update(c) {
    const name = onePositional(c.parsed, 'the key name', c.usage);
    const attributes = attributesFromFlags(c.parsed.flags);
    const cleared = clearedFromFlags(c.parsed.flags);
    if (Object.keys(attributes).length === 0 && cleared.size === 0) {
      throw new UsageError(`nothing to change: give attribute flags or --clear (${HELP_HINT})`);
    }
    await withStore(c.configPath, c.io, async (store) => {
      const current = notFromConfig(store, await requireKey(store, name), 'change its attributes there');
      const row = await store.keys.update(name, updatePatch(current, attributes, cleared));
      if (!c.json) c.io.out(`Updated key "${row.name}".\n`);
      printKey(c, row);
      await announceKeyChange(store.config, row.id, c.io.err);
    });
  },

  disable: (c) => setEnabled(c, false),
  enable: (c) => setEnabled(c, true),

  async rotate(c) {
    const name = onePositional(c.parsed, 'the key name', c.usage);
    await withStore(c.configPath, c.io, async (store) => {
      notFromConfig(store, await requireKey(store, name), 'change its "key" (or the variable its "key_env" names) there');
      const secret = generateKeySecret();
      const row = await store.keys.replaceSecret(name, hashKeySecret(secret), keyPrefix(secret));
      printSecret(c, row, secret, `Rotated key "${row.name}" (new prefix ${row.keyPrefix}): the old secret no longer works.`);
      await announceKeyChange(store.config, row.id, c.io.err);
    });
  },

  async delete(c) {
    const name = onePositional(c.parsed, 'the key name', c.usage);
    const confirmed = c.parsed.flags.has('yes');
    const confirm = c.io.confirm;
    if (!confirmed && confirm === undefined) throw new UsageError(`deleting needs --yes when there is no terminal to ask on (${c.usage})`);
    await withStore(c.configPath, c.io, async (store) => {
      const row = notFromConfig(store, await requireKey(store, name), 'remove it from "keys" there');
      const question = `Delete key "${row.name}" (${row.keyPrefix})? Apps using it are refused at once. [y/N] `;
      if (!confirmed && !(await confirm!(question))) throw new CommandError('not deleted');
      // Deleted between the check and here by someone else: the outcome the operator wanted.
      await store.keys.delete(name);
      c.io.out(c.json ? `${JSON.stringify({ name: row.name, id: row.id, deleted: true })}\n` : `Deleted key "${row.name}" (${row.keyPrefix}). Its usage records are kept.\n`);
      await announceKeyChange(store.config, row.id, c.io.err);
    });
  },
};

async function setEnabled(c: Context, enabled: boolean): Promise<void> {
  const name = onePositional(c.parsed, 'the key name', c.usage);
  await withStore(c.configPath, c.io, async (store) => {
    const current = notFromConfig(store, await requireKey(store, name), `set "enabled": ${enabled} there`);
    const row = current.enabled === enabled ? current : await store.keys.update(name, { enabled });
    const verb = enabled ? 'enabled' : 'disabled';
    if (c.json) c.io.out(`${JSON.stringify(publicKey(row), null, 2)}\n`);
    else c.io.out(current === row ? `Key "${row.name}" was already ${verb}.\n` : `Key "${row.name}" ${verb}.\n`);
    if (current !== row) await announceKeyChange(store.config, row.id, c.io.err);
  });
}

async function requireKey(store: Store, name: string): Promise<AppKeyRow> {
  const row = await store.keys.getByName(name);
  if (row === undefined) throw new CommandError(`no key named ${JSON.stringify(name)} (see "openai-api keys list")`);
  return row;
}

/** Config keys are re-synced from config.json on every start and command, so a change here would not last. */
function notFromConfig(store: Store, row: AppKeyRow, remedy: string): AppKeyRow {
  if (row.source !== 'config') return row;
  const where = store.config.configFile ?? 'config.json';
  throw new CommandError(`key "${row.name}" is managed in ${where} ("keys"), not by the CLI: ${remedy}`);
}

function printKey(c: Context, row: AppKeyRow): void {
  c.io.out(c.json ? `${JSON.stringify(publicKey(row), null, 2)}\n` : renderKeyDetails(row, new Date()));
}

/** The only place a secret is ever shown: once, right after it was made. */
function printSecret(c: Context, row: AppKeyRow, secret: string, headline: string): void {
  if (c.json) {
    const { name, id, prefix, ...rest } = publicKey(row);
    c.io.out(`${JSON.stringify({ name, id, key: secret, prefix, ...rest }, null, 2)}\n`);
    return;
  }
  c.io.out(
    `${headline}\n\n` +
      `    ${secret}\n\n` +
      'Store it now: it cannot be shown again (only its SHA-256 hash is kept).\n' +
      'Apps send it as "Authorization: Bearer <key>".\n',
  );
}
