import { REFUSED_BEFORE_UPSTREAM } from '../errors/catalogue.js';

/**
 * The rollups of usage records (`usage_daily`, `usage_hourly`, migration 0004): how a batch of
 * records is summed into day and hour buckets before it is written, and how a time range splits
 * into whole days, whole hours and partial hours (read from the raw rows).
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface RollupLevel {
  readonly table: 'usage_daily' | 'usage_hourly';
  /** The column holding the start of the period, an ISO timestamp like `ts`. */
  readonly column: 'day' | 'hour';
  readonly ms: number;
  /** `2025-01-31T12:34:56.789Z` → the start of its period, as the migration's backfill computes it. */
  readonly start: (ts: string) => string;
}

const DAILY: RollupLevel = { table: 'usage_daily', column: 'day', ms: DAY_MS, start: (ts) => `${ts.slice(0, 10)}T00:00:00.000Z` };
const HOURLY: RollupLevel = { table: 'usage_hourly', column: 'hour', ms: HOUR_MS, start: (ts) => `${ts.slice(0, 13)}:00:00.000Z` };
/** Coarsest first: a range is read from the coarsest rollup whose periods fit in it. */
export const LEVELS: readonly RollupLevel[] = [DAILY, HOURLY];

/** The dimensions of a rollup row after its period, then its sums, in the order both upserts bind them. */
const COLUMNS = [
  ['key_id', 'text'], ['key_name', 'text'], ['model', 'text'], ['upstream', 'text'],
  ['requests', 'int8'], ['errors', 'int8'], ['refused', 'int8'], ['refused_tokens', 'int8'], ['refused_cost_usd', 'float8'],
  ['prompt_tokens', 'int8'], ['completion_tokens', 'int8'], ['cached_tokens', 'int8'], ['reasoning_tokens', 'int8'],
  ['total_tokens', 'int8'], ['cost_usd', 'float8'],
] as const;
const DIMENSIONS = 4;
type RollupValue = string | number | null;

/** Error codes of requests refused before the upstream: counted apart, so budget baselines can leave them out. */
const REFUSED = new Set<string>(REFUSED_BEFORE_UPSTREAM);

function onConflict(level: RollupLevel): string {
  // Must name the expressions of <table>_bucket_idx (0004) exactly, or `on conflict` finds no index.
  const target = [level.column, ...COLUMNS.slice(0, DIMENSIONS).map(([name]) => `(coalesce('=' || ${name}, ''))`)].join(', ');
  const sums = COLUMNS.slice(DIMENSIONS).map(([name]) =>
    name === 'cost_usd'
      ? // Stays null until some record has a cost, as SUM over the raw rows would.
        `cost_usd = coalesce(${level.table}.cost_usd + excluded.cost_usd, ${level.table}.cost_usd, excluded.cost_usd)`
      : `${name} = ${level.table}.${name} + excluded.${name}`,
  );
  return `on conflict (${target}) do update set ${sums.join(', ')}`;
}

function columnList(level: RollupLevel): string {
  return [level.column, ...COLUMNS.map(([name]) => name)].join(', ');
}

/** SQLite: one bucket per run, inside the transaction that inserts the raw rows. */
export function sqliteUpsert(level: RollupLevel): string {
  return `insert into ${level.table} (${columnList(level)}) values (${['?', ...COLUMNS.map(() => '?')].join(', ')}) ${onConflict(level)}`;
}

/** PostgreSQL: every bucket of a batch in one statement of arrays, parameters numbered from `first`. */
export function pgUpsert(level: RollupLevel, first: number): string {
  const arrays = [`$${first}::text[]`, ...COLUMNS.map(([, type], i) => `$${first + 1 + i}::${type}[]`)].join(', ');
  return `insert into ${level.table} (${columnList(level)}) select * from unnest(${arrays}) ${onConflict(level)}`;
}

/** Parameters one `pgUpsert` takes. */
export const PG_UPSERT_PARAMETERS = COLUMNS.length + 1;

/** The sums of one batch per day and per hour bucket, from the values the raw insert binds (already normalised). */
export class RollupBatch {
  readonly #buckets = new Map<RollupLevel, Map<string, RollupValue[]>>(LEVELS.map((level) => [level, new Map()]));

  add(
    ts: string,
    dimensions: readonly [keyId: string | null, keyName: string | null, model: string | null, upstream: string | null],
    status: number,
    errorCode: string | null,
    tokens: readonly [prompt: number, completion: number, cached: number, reasoning: number, total: number],
    costUsd: number | null,
  ): void {
    const error = status >= 400 || errorCode !== null;
    const refused = errorCode !== null && REFUSED.has(errorCode);
    // JSON keeps null and '' apart, as the unique index does.
    const key = JSON.stringify(dimensions);
    for (const [level, buckets] of this.#buckets) {
      const start = level.start(ts);
      let row = buckets.get(start + key);
      if (row === undefined) {
        row = [start, ...dimensions, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, null];
        buckets.set(start + key, row);
      }
      // [period, 4 dimensions, requests, errors, refused, refused_tokens, refused_cost_usd, 5 token counts, cost_usd]
      (row[5] as number)++;
      if (error) (row[6] as number)++;
      if (refused) {
        (row[7] as number)++;
        (row[8] as number) += tokens[4];
        (row[9] as number) += costUsd ?? 0;
      }
      for (let i = 0; i < 5; i++) (row[10 + i] as number) += tokens[i] as number;
      if (costUsd !== null) row[15] = ((row[15] as number | null) ?? 0) + costUsd;
    }
  }

  /**
   * A level's rows in key order: every instance upserts buckets in the same order, so two
   * concurrent flushes on PostgreSQL wait for each other's row locks instead of deadlocking.
   */
  rows(level: RollupLevel): RollupValue[][] {
    const buckets = this.#buckets.get(level) ?? new Map<string, RollupValue[]>();
    return [...buckets.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
  }

  /** A level's rows as one array per column, for PostgreSQL's `unnest`. */
  columns(level: RollupLevel): RollupValue[][] {
    const rows = this.rows(level);
    return Array.from({ length: PG_UPSERT_PARAMETERS }, (_, c) => rows.map((row) => row[c] as RollupValue));
  }
}

/** A [from, to) range of ISO timestamps; an undefined end is open. */
export interface TimeRange {
  from: string | undefined;
  to: string | undefined;
}

/** Where one piece of a range is read: a rollup (`column >= from and column < to`), or the raw rows (`ts`). */
export interface RangePart extends TimeRange {
  source: RollupLevel | 'raw';
}

/**
 * Splits [since, until) into the pieces each source answers: whole days from the daily rollup,
 * whole hours left at either end from the hourly one, and the raw rows for the partial first
 * hour (when `since` is not on the hour) and for everything from the start of the last partial
 * hour on — with `until` open, the hour under way and any record stamped later. Exact for any
 * boundaries and any `now`, because each period of a rollup holds exactly the raw rows of that
 * period (they are written in one transaction). `coarsest` leaves out the coarser rollups.
 */
export function splitRange(since: Date | undefined, until: Date | undefined, now: Date, coarsest: RollupLevel['column'] = 'day'): RangePart[] {
  // `hour`: no daily part, for a report grouped by hour.
  return split(since?.getTime(), until?.getTime(), now.getTime(), LEVELS.findIndex((level) => level.column === coarsest));
}

function split(from: number | undefined, to: number | undefined, now: number, levelIndex: number): RangePart[] {
  const iso = (time: number | undefined) => (time === undefined ? undefined : new Date(time).toISOString());
  const level = LEVELS[levelIndex];
  if (level === undefined) return [{ source: 'raw', from: iso(from), to: iso(to) }];
  const end = Math.floor((to ?? now) / level.ms) * level.ms;
  const start = from === undefined ? undefined : Math.ceil(from / level.ms) * level.ms;
  if (start !== undefined && start >= end) return split(from, to, now, levelIndex + 1);
  const parts: RangePart[] = [{ source: level, from: iso(start), to: iso(end) }];
  if (from !== undefined && from < (start as number)) parts.push(...split(from, start, now, levelIndex + 1));
  if (to === undefined || to > end) parts.push(...split(end, to, now, levelIndex + 1));
  return parts;
}
