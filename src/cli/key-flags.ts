import { attributesToSettings } from '../auth/key-attributes.js';
import { keyAttributesSchema, type KeyAttributes } from '../config/key-entry.js';
import { nearestName } from '../config/near-miss.js';
import type { KeyDefaults, KeySettings } from '../domain/key-settings.js';
import type { AppKeyPatch, AppKeyRow } from '../storage/keys-repository.js';
import { UsageError, type FlagSpec } from './flags.js';

type DefaultName = keyof KeyDefaults;

/** How the text of a flag becomes the JSON value config.json would hold. */
type Kind = 'number' | 'text' | 'list' | 'json' | 'off' | 'switch';

interface AttributeFlag extends FlagSpec {
  readonly kind: Kind;
  /** Where the value goes in the snake_case attributes (config.json, admin API). */
  readonly path: readonly [keyof KeyAttributes] | readonly ['defaults', DefaultName];
  /** The repository setting that `--clear` resets (defaults are cleared one field at a time). */
  readonly setting?: keyof KeySettings;
  readonly expect: string;
}

const POSITIVE_INT = 'a positive integer';

/**
 * The key attributes as flags. Values are converted to what config.json would hold and then
 * validated by keyAttributesSchema, so the CLI, config.json and the admin API accept the same
 * values; `expect` only words the message.
 */
export const ATTRIBUTE_FLAGS: readonly AttributeFlag[] = [
  { name: 'models', value: 'LIST', kind: 'list', path: ['models'], setting: 'models', expect: 'model names or glob patterns separated by ",", e.g. "gpt-4o*,gpt-4.1-mini"' },
  { name: 'rpm', value: 'N', kind: 'number', path: ['rpm'], setting: 'rpm', expect: `${POSITIVE_INT} (requests per minute)` },
  { name: 'tpm', value: 'N', kind: 'number', path: ['tpm'], setting: 'tpm', expect: `${POSITIVE_INT} (tokens per minute)` },
  { name: 'rpd', value: 'N', kind: 'number', path: ['rpd'], setting: 'rpd', expect: `${POSITIVE_INT} (requests per day)` },
  { name: 'budget-tokens', value: 'N', kind: 'number', path: ['budget_tokens'], setting: 'budgetTokens', expect: `${POSITIVE_INT} (tokens per budget period)` },
  { name: 'budget-usd', value: 'X', kind: 'number', path: ['budget_usd'], setting: 'budgetUsd', expect: 'a positive number of US dollars, e.g. 25 or 7.5' },
  { name: 'budget-period', value: 'day|month|total', kind: 'text', path: ['budget_period'], setting: 'budgetPeriod', expect: 'one of day, month, total' },
  { name: 'expires', value: 'DATE', kind: 'text', path: ['expires_at'], setting: 'expiresAt', expect: 'an ISO-8601 date such as 2027-01-31 or 2027-01-31T00:00:00Z' },
  { name: 'bot-desc', value: 'TEXT', kind: 'text', path: ['bot_desc'], setting: 'botDesc', expect: 'text (the persona system message)' },
  { name: 'persona-mode', value: 'prepend|replace|off', kind: 'text', path: ['persona_mode'], setting: 'personaMode', expect: 'one of prepend, replace, off' },
  { name: 'default-model', value: 'MODEL', kind: 'text', path: ['defaults', 'model'], expect: 'a model name, e.g. gpt-4o-mini' },
  { name: 'temperature', value: 'X', kind: 'number', path: ['defaults', 'temperature'], expect: 'a number from 0 to 2' },
  { name: 'top-p', value: 'X', kind: 'number', path: ['defaults', 'top_p'], expect: 'a number from 0 to 1' },
  { name: 'max-tokens', value: 'N', kind: 'number', path: ['defaults', 'max_tokens'], expect: POSITIVE_INT },
  { name: 'frequency-penalty', value: 'X', kind: 'number', path: ['defaults', 'frequency_penalty'], expect: 'a number from -2 to 2' },
  { name: 'presence-penalty', value: 'X', kind: 'number', path: ['defaults', 'presence_penalty'], expect: 'a number from -2 to 2' },
  { name: 'max-tokens-ceiling', value: 'N', kind: 'number', path: ['max_tokens_ceiling'], setting: 'maxTokensCeiling', expect: `${POSITIVE_INT} (the largest max_tokens a request may ask for)` },
  { name: 'allow-origin', value: 'ORIGINS', kind: 'text', path: ['allow_origin'], setting: 'allowOrigin', expect: 'origins separated by ",", e.g. "https://a.example,https://b.example"' },
  { name: 'endpoints', value: 'LIST', kind: 'list', path: ['endpoints'], setting: 'endpoints', expect: 'extra endpoints, at your own risk: "METHOD /v1/path" grants separated by ",", e.g. "POST /v1/fine_tuning/jobs,* /v1/evals*"' },
  { name: 'metadata', value: 'JSON', kind: 'json', path: ['metadata'], setting: 'metadata', expect: `a JSON object, e.g. '{"team":"mobile"}'` },
  { name: 'memory', value: 'on|off', kind: 'switch', path: ['memory'], setting: 'memory', expect: 'on or off (conversations of /api/chat)' },
  { name: 'memory-max-tokens', value: 'N', kind: 'number', path: ['memory_max_tokens'], setting: 'memoryMaxTokens', expect: `${POSITIVE_INT} up to 1000000 (tokens of conversation history sent with a prompt)` },
  { name: 'memory-max-turns', value: 'N', kind: 'number', path: ['memory_max_turns'], setting: 'memoryMaxTurns', expect: `${POSITIVE_INT} up to 1000 (turns a conversation remembers)` },
  { name: 'memory-ttl', value: 'SECONDS', kind: 'number', path: ['memory_ttl'], setting: 'memoryTtl', expect: `${POSITIVE_INT} up to 31536000 (seconds a conversation is kept after its last message)` },
  { name: 'cache-ttl', value: 'SECONDS', kind: 'number', path: ['cache_ttl'], setting: 'cacheTtl', expect: 'an integer from 0 (off for this key) to 31536000 (seconds an answer stays in the response cache)' },
  { name: 'cache-group', value: 'NAME', kind: 'text', path: ['cache_group'], setting: 'cacheGroup', expect: 'a group name (keys in one group share cached answers), 1-64 letters, digits, ".", "_" or "-"' },
  { name: 'disabled', kind: 'off', path: ['enabled'], expect: 'no value' },
];

/** `keys update --clear rpm,budget-usd`: the attributes that can be unset, plus `defaults` for all of them. */
export const CLEAR_FLAG: FlagSpec = { name: 'clear', value: 'LIST' };
const CLEARABLE = [...ATTRIBUTE_FLAGS.filter((flag) => flag.kind !== 'off').map((flag) => flag.name), 'defaults'];

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function convert(flag: AttributeFlag, text: string): unknown {
  switch (flag.kind) {
    case 'number':
      // Anything that is not plainly a number stays a string, so the schema rejects it by type.
      return NUMBER.test(text.trim()) ? Number(text.trim()) : text;
    case 'text':
      return text;
    case 'list':
      return text.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
    case 'json':
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new UsageError(`--${flag.name} is not valid JSON: expected ${flag.expect}`);
      }
    case 'off':
      return false;
    case 'switch':
      // Anything else stays a string, so the schema rejects it by type.
      return text === 'on' ? true : text === 'off' ? false : text;
  }
}

/** The attribute flags present in `flags`, validated; a bad value names its flag and what it takes. */
export function attributesFromFlags(flags: ReadonlyMap<string, string>): KeyAttributes {
  const raw: Record<string, unknown> = {};
  const defaults: Record<string, unknown> = {};
  for (const flag of ATTRIBUTE_FLAGS) {
    const text = flags.get(flag.name);
    if (text === undefined) continue;
    const value = convert(flag, text);
    if (flag.path[0] === 'defaults') defaults[flag.path[1]!] = value;
    else raw[flag.path[0]] = value;
  }
  if (Object.keys(defaults).length > 0) raw.defaults = defaults;
  const result = keyAttributesSchema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const flag = ATTRIBUTE_FLAGS.find((candidate) => candidate.path.every((part, i) => issue.path[i] === part));
  if (flag === undefined) throw new UsageError(`invalid key attributes: ${issue.message}`);
  if (flag.kind === 'list') {
    // A list is wrong item by item (an endpoint grant) or as a whole (too many): say which, and why.
    const index = issue.path[1];
    const item = typeof index === 'number' ? ` item ${JSON.stringify((raw[flag.path[0]] as string[])[index])}` : '';
    throw new UsageError(`--${flag.name}${item}: ${issue.message}`);
  }
  throw new UsageError(`--${flag.name} is ${JSON.stringify(flags.get(flag.name))}: expected ${flag.expect}`);
}

/** The flag names of `--clear LIST`; unknown names and names also being set are errors. */
export function clearedFromFlags(flags: ReadonlyMap<string, string>): Set<string> {
  const text = flags.get(CLEAR_FLAG.name);
  const cleared = new Set<string>();
  if (text === undefined) return cleared;
  for (const item of text.split(',').map((part) => part.trim().replace(/^--/, '')).filter((part) => part.length > 0)) {
    if (!CLEARABLE.includes(item)) {
      const suggestion = nearestName(item, CLEARABLE.map((name) => name.replace(/-/g, '_')));
      const hint = suggestion === undefined ? `one of ${CLEARABLE.join(', ')}` : `did you mean ${suggestion.replace(/_/g, '-')}?`;
      throw new UsageError(`--clear names "${item}", which is not an attribute that can be cleared (${hint})`);
    }
    if (flags.has(item)) throw new UsageError(`--${item} is both set and cleared`);
    cleared.add(item);
  }
  if (cleared.size === 0) throw new UsageError(`--clear is empty: expected attributes separated by ",", e.g. rpm,budget-usd`);
  return cleared;
}

/**
 * The patch for `keys update`: set attributes replace, cleared ones become null. Defaults merge
 * into the key's current defaults, so `--temperature 0.2` keeps an earlier `--default-model`.
 */
export function updatePatch(current: AppKeyRow, attributes: KeyAttributes, cleared: ReadonlySet<string>): AppKeyPatch {
  const { defaults, ...rest } = attributes;
  const patch: AppKeyPatch = attributesToSettings(rest);
  const clearedDefaults: DefaultName[] = [];
  for (const flag of ATTRIBUTE_FLAGS) {
    if (!cleared.has(flag.name)) continue;
    if (flag.setting !== undefined) (patch as Record<string, unknown>)[flag.setting] = null;
    else if (flag.path[0] === 'defaults') clearedDefaults.push(flag.path[1]!);
  }
  if (defaults !== undefined || clearedDefaults.length > 0 || cleared.has('defaults')) {
    const merged: KeyDefaults = cleared.has('defaults') ? {} : { ...current.defaults };
    for (const name of clearedDefaults) delete merged[name];
    Object.assign(merged, defaults);
    patch.defaults = Object.keys(merged).length > 0 ? merged : null;
  }
  return patch;
}
