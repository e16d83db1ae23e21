export const number = (value: number): string => value.toLocaleString();
export const usd = (value: number | null): string => (value === null ? '—' : `$${value.toFixed(value < 1 ? 4 : 2)}`);
export const percent = (part: number, whole: number): string => (whole === 0 ? '0%' : `${((100 * part) / whole).toFixed(1)}%`);
export const dash = (value: unknown): string => (value === null || value === undefined || value === '' ? '—' : String(value));

/** Start of the current UTC day / month: the windows budgets and `rpd` count in. */
export function periodStart(period: 'day' | 'month'): Date {
  const now = new Date();
  return period === 'day' ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

/** RFC 4180 CSV: fields with a comma, quote or line break are quoted, quotes doubled. */
export function toCsv(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '';
  const columns = Object.keys(rows[0]!);
  const cell = (value: unknown): string => {
    const text = value === null || value === undefined ? '' : String(value);
    // A leading =, +, - or @ would be a formula in a spreadsheet.
    const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return [columns.join(','), ...rows.map((row) => columns.map((column) => cell(row[column])).join(','))].join('\r\n') + '\r\n';
}

/** The rows of a by-day report over every UTC day from `since` to `until` (inclusive), absent days as zero. */
export function everyDay<T extends { group: string }>(rows: T[], since: Date, until: Date, zero: (day: string) => T): T[] {
  return everyPeriod(rows, since, until, 86_400_000, 10, zero);
}

/** The rows of a by-hour report (`YYYY-MM-DDTHH`) over every UTC hour from `since` to `until` (inclusive), absent hours as zero. */
export function everyHour<T extends { group: string }>(rows: T[], since: Date, until: Date, zero: (hour: string) => T): T[] {
  return everyPeriod(rows, since, until, 3_600_000, 13, zero);
}

function everyPeriod<T extends { group: string }>(rows: T[], since: Date, until: Date, ms: number, length: number, zero: (group: string) => T): T[] {
  const byGroup = new Map(rows.map((row) => [row.group, row]));
  const out: T[] = [];
  for (let at = Math.floor(since.getTime() / ms) * ms; at <= until.getTime() && out.length < 8800; at += ms) {
    const group = new Date(at).toISOString().slice(0, length);
    out.push(byGroup.get(group) ?? zero(group));
  }
  return out;
}

/** A day (`YYYY-MM-DD`) or hour (`YYYY-MM-DDTHH`) group as Unix seconds, for the charts. */
export const groupSeconds = (group: string): number => Date.parse(group.length === 10 ? `${group}T00:00:00Z` : `${group}:00:00Z`) / 1000;

/** Milliseconds: `0.412 ms` under 10, whole above. */
export const ms = (value: number | null): string => (value === null ? '—' : value < 10 ? `${value.toFixed(value < 1 ? 3 : 1)} ms` : `${Math.round(value).toLocaleString()} ms`);

export const zeroRow = (group: string) => ({ group, requests: 0, promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0, totalTokens: 0, costUsd: null, errors: 0 });
