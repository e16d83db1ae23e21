import { nearestName } from '../config/near-miss.js';

/** A command line that cannot be run as written: exit code 2, nothing done. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface FlagSpec {
  /** Without the leading dashes, e.g. `budget-usd`. */
  readonly name: string;
  /** What the value looks like in messages (`N`, `DATE`); absent for switches such as `--json`. */
  readonly value?: string;
  readonly short?: string;
}

export interface ParsedFlags {
  readonly positionals: readonly string[];
  /** Flag name → its value (`''` for a switch), in the order given. */
  readonly flags: ReadonlyMap<string, string>;
}

// A negative number is a value (`--frequency-penalty -1`), any other dash-led word is the next flag.
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Parses `--name value`, `--name=value`, switches and positionals against a fixed list.
 * Unknown flags, missing values and repeated flags are UsageErrors, never ignored: a mistyped
 * limit silently dropped would create a key without it. `--` ends the flags.
 */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], helpHint: string): ParsedFlags {
  const byName = new Map(specs.map((spec) => [spec.name, spec]));
  const byShort = new Map(specs.filter((spec) => spec.short !== undefined).map((spec) => [spec.short!, spec]));
  const positionals: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-' || NUMBER.test(arg)) {
      positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const written = equals < 0 ? arg : arg.slice(0, equals);
    const spec = written.startsWith('--') ? byName.get(written.slice(2)) : byShort.get(written.slice(1));
    if (spec === undefined) throw new UsageError(unknownFlagMessage(written, specs, helpHint));
    if (flags.has(spec.name)) throw new UsageError(`--${spec.name} is given twice`);
    if (spec.value === undefined) {
      if (equals >= 0) throw new UsageError(`--${spec.name} takes no value`);
      flags.set(spec.name, '');
      continue;
    }
    let value: string | undefined;
    if (equals >= 0) value = arg.slice(equals + 1);
    else {
      const next = argv[i + 1];
      if (next !== undefined && (!next.startsWith('-') || NUMBER.test(next))) {
        value = next;
        i++;
      }
    }
    if (value === undefined) throw new UsageError(`--${spec.name} needs a value (--${spec.name} ${spec.value})`);
    flags.set(spec.name, value);
  }
  return { positionals, flags };
}

function unknownFlagMessage(written: string, specs: readonly FlagSpec[], helpHint: string): string {
  const suggestion = nearestName(written.replace(/^-+/, ''), specs.map((spec) => spec.name.replace(/-/g, '_')));
  return suggestion === undefined
    ? `unknown option ${written} (${helpHint})`
    : `unknown option ${written} — did you mean --${suggestion.replace(/_/g, '-')}?`;
}

/** The one positional a command needs, e.g. the key name of `keys show NAME`. */
export function onePositional(parsed: ParsedFlags, what: string, usage: string): string {
  const [first, ...extra] = parsed.positionals;
  if (first === undefined) throw new UsageError(`missing ${what} (${usage})`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" (${usage})`);
  return first;
}

export function noPositionals(parsed: ParsedFlags, usage: string): void {
  const [first] = parsed.positionals;
  if (first !== undefined) throw new UsageError(`unexpected argument "${first}" (${usage})`);
}
