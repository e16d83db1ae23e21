export interface Column {
  readonly header: string;
  /** Numbers read best right-aligned. */
  readonly align?: 'left' | 'right';
}

const GAP = '  ';

/**
 * Control characters shown as JSON escapes: a model name or bot_desc holding a newline or an
 * ANSI escape must neither break the table nor drive the operator's terminal.
 */
export function cell(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (char) => JSON.stringify(char).slice(1, -1));
}

/** Text cut to `max` characters, ending in "…" when cut. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * An aligned plain-text table: header, a rule, the rows, and (after a second rule) the footer
 * rows such as a TOTAL. Trailing spaces are trimmed so the output diffs cleanly.
 */
export function renderTable(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>, footer: ReadonlyArray<readonly string[]> = []): string {
  const all = [columns.map((column) => column.header), ...rows, ...footer].map((row) => row.map(cell));
  const widths = columns.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string =>
    columns
      .map((column, i) => {
        const text = row[i] ?? '';
        return column.align === 'right' ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
      })
      .join(GAP)
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join(GAP);
  const [header, ...rest] = all;
  const body = rest.slice(0, rows.length).map(line);
  const foot = rest.slice(rows.length).map(line);
  return [line(header!), rule, ...body, ...(foot.length > 0 ? [rule, ...foot] : [])].join('\n') + '\n';
}

/** `label  value` lines with the values aligned, for one record (`keys show`). */
export function renderPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...pairs.map(([label]) => label.length));
  return pairs.map(([label, value]) => `${label.padEnd(width)}${GAP}${cell(value)}`.trimEnd()).join('\n') + '\n';
}

/** `2027-01-31 00:00Z`: minutes are enough to read, and the Z says it is UTC. */
export function formatTime(date: Date | null, empty: string): string {
  return date === null ? empty : `${date.toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

/** 1234567 → "1,234,567": token counts are read at a glance. */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: 0 });
}
