import { UsageRepository, type UsageGroupBy, type UsageReportFilter, type UsageReportRow } from '../storage/usage-repository.js';
import { CommandError, runCommand, withStore, type CommandIo } from './command.js';
import { noPositionals, parseFlags, UsageError, type FlagSpec } from './flags.js';
import { formatCount, formatTime, renderTable } from './table.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'key', value: 'NAME' },
  { name: 'since', value: 'DATE' },
  { name: 'until', value: 'DATE' },
  { name: 'by', value: 'model|day|key' },
  { name: 'json' },
  { name: 'config', value: 'PATH', short: 'c' },
  { name: 'help', short: 'h' },
];

const USAGE = 'openai-api usage [--key NAME] [--since DATE] [--until DATE] [--by model|day|key] [--json]';

export const USAGE_HELP = `openai-api usage — tokens, requests and cost from the usage records

Usage:
  ${USAGE}

  --key NAME          only this app key's requests
  --since DATE        from this time on (inclusive): an ISO date such as 2025-01-31 or
                      2025-01-31T12:00:00Z, or a time ago such as 24h, 7d, 4w
  --until DATE        up to this time (exclusive), same forms
  --by model|day|key  one row per model, UTC day or key (default: key)
  --json              the rows as a JSON array, for scripts
  --config PATH       the config whose database_url holds the records

Costs are in USD from the price table; "—" means no price was known for those requests.
`;

const GROUPS: readonly UsageGroupBy[] = ['key', 'model', 'day'];
const HOUR_MS = 3_600_000;
const UNIT_MS: Record<string, number> = { h: HOUR_MS, d: 24 * HOUR_MS, w: 7 * 24 * HOUR_MS };
// No minutes or months: "1m" would be read both ways.
const RELATIVE = /^(\d+)([hdw])$/;
const EXPECT_TIME = 'expected an ISO date such as 2025-01-31 or 2025-01-31T12:00:00Z, or a time ago such as 24h, 7d, 4w';

/** A moment from an ISO date or a time before `now` (`7d`); Date.parse alone accepts too much ("1" is 2001). */
export function parseTime(flag: string, text: string, now: Date): Date {
  const relative = RELATIVE.exec(text.trim());
  if (relative !== null) return new Date(now.getTime() - Number(relative[1]) * UNIT_MS[relative[2]!]!);
  const time = /^\d{4}-\d{2}-\d{2}/.test(text.trim()) ? Date.parse(text.trim()) : NaN;
  if (Number.isNaN(time)) throw new UsageError(`--${flag} is ${JSON.stringify(text)}: ${EXPECT_TIME}`);
  return new Date(time);
}

function parseBy(text: string | undefined): UsageGroupBy {
  if (text === undefined) return 'key';
  const by = GROUPS.find((group) => group === text);
  if (by === undefined) throw new UsageError(`--by is ${JSON.stringify(text)}: expected one of model, day, key`);
  return by;
}

/** `openai-api usage …`: exit 0 done, 1 could not be done, 2 bad command line. */
export function usageCommand(argv: readonly string[], configPath: string | undefined, io: CommandIo): Promise<number> {
  return runCommand('usage', io, async () => {
    const parsed = parseFlags(argv, FLAGS, 'run "openai-api usage --help" for the options');
    if (parsed.flags.has('help')) return io.out(USAGE_HELP);
    noPositionals(parsed, USAGE);
    const now = new Date();
    const flags = parsed.flags;
    const filter: UsageReportFilter = { by: parseBy(flags.get('by')) };
    const since = flags.get('since');
    const until = flags.get('until');
    const keyName = flags.get('key');
    if (since !== undefined) filter.since = parseTime('since', since, now);
    if (until !== undefined) filter.until = parseTime('until', until, now);
    if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) {
      throw new UsageError(`--since (${filter.since.toISOString()}) must be before --until (${filter.until.toISOString()})`);
    }
    if (keyName !== undefined) {
      if (keyName.trim() === '') throw new UsageError('--key is empty: expected a key name');
      filter.keyName = keyName;
    }
    await withStore(flags.get('config') ?? configPath, io, async ({ database, keys }) => {
      const rows = await new UsageRepository(database).report(filter);
      // Deleted keys keep their records, so only an empty report makes an unknown name a mistake.
      if (rows.length === 0 && keyName !== undefined && (await keys.getByName(keyName)) === undefined) {
        throw new CommandError(`no key named ${JSON.stringify(keyName)}, and no usage recorded under that name`);
      }
      io.out(flags.has('json') ? `${JSON.stringify(rows.map(jsonRow), null, 2)}\n` : renderReport(filter, rows));
    });
  });
}

function jsonRow(row: UsageReportRow): Record<string, string | number | null> {
  return {
    group: row.group,
    requests: row.requests,
    errors: row.errors,
    prompt_tokens: row.promptTokens,
    completion_tokens: row.completionTokens,
    cached_tokens: row.cachedTokens,
    reasoning_tokens: row.reasoningTokens,
    total_tokens: row.totalTokens,
    cost_usd: row.costUsd,
  };
}

function describeFilter(filter: UsageReportFilter): string {
  const parts = [`Usage by ${filter.by}`];
  if (filter.keyName !== undefined) parts.push(`for key ${JSON.stringify(filter.keyName)}`);
  if (filter.since !== undefined) parts.push(`since ${formatTime(filter.since, '')}`);
  if (filter.until !== undefined) parts.push(`until ${formatTime(filter.until, '')}`);
  if (filter.since === undefined && filter.until === undefined) parts.push('(all time)');
  return parts.join(' ');
}

function formatCost(cost: number | null): string {
  return cost === null ? '—' : cost.toFixed(4);
}

export function renderReport(filter: UsageReportFilter, rows: readonly UsageReportRow[]): string {
  const caption = describeFilter(filter);
  if (rows.length === 0) return `${caption}: no usage recorded.\n`;
  const sum = (pick: (row: UsageReportRow) => number): number => rows.reduce((total, row) => total + pick(row), 0);
  const costs = rows.map((row) => row.costUsd).filter((cost) => cost !== null);
  const numbers = (row: Omit<UsageReportRow, 'group'>): string[] => [
    formatCount(row.requests),
    formatCount(row.errors),
    formatCount(row.promptTokens),
    formatCount(row.completionTokens),
    formatCount(row.cachedTokens),
    formatCount(row.reasoningTokens),
    formatCount(row.totalTokens),
    formatCost(row.costUsd),
  ];
  const total: Omit<UsageReportRow, 'group'> = {
    requests: sum((row) => row.requests),
    errors: sum((row) => row.errors),
    promptTokens: sum((row) => row.promptTokens),
    completionTokens: sum((row) => row.completionTokens),
    cachedTokens: sum((row) => row.cachedTokens),
    reasoningTokens: sum((row) => row.reasoningTokens),
    totalTokens: sum((row) => row.totalTokens),
    costUsd: costs.length === 0 ? null : costs.reduce((a, b) => a + b, 0),
  };
  const right = (header: string) => ({ header, align: 'right' as const });
  const table = renderTable(
    [
      { header: filter.by.toUpperCase() },
      right('REQUESTS'),
      right('ERRORS'),
      right('PROMPT'),
      right('COMPLETION'),
      right('CACHED'),
      right('REASONING'),
      right('TOTAL TOKENS'),
      right('COST (USD)'),
    ],
    rows.map((row) => [row.group, ...numbers(row)]),
    [['TOTAL', ...numbers(total)]],
  );
  return `${caption}\n\n${table}`;
}
