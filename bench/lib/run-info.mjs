// Facts about a run that are not measurements: versions, the commit, the machine's other load,
// the gateway's own records (usage rows, log lines), and the marked blocks the tables replace.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './stats.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const requireFromRoot = createRequire(join(ROOT, 'package.json'));
export const requireFromBench = createRequire(join(ROOT, 'bench', 'package.json'));

/** Usage rows and request log lines the gateway wrote: proof that metering and logging were on. */
export function gatewayEvidence(target) {
  const Database = requireFromRoot('better-sqlite3');
  const database = new Database(target.database, { readonly: true, fileMustExist: true });
  try {
    const rows = database.prepare('SELECT count(*) AS n FROM usage_records').get().n;
    const log = readFileSync(target.logFile);
    let logLines = 0;
    for (let at = log.indexOf('"msg":"request"'); at !== -1; at = log.indexOf('"msg":"request"', at + 1)) logLines++;
    return { usageRows: rows, logLines };
  } finally {
    database.close();
  }
}

/** CPU that other processes used during the measured windows (% of one CPU): median and worst. */
export function otherLoad(runs) {
  const values = Object.values(runs).flatMap((byTarget) => Object.values(byTarget).flatMap((rounds) => rounds.map((round) => round.otherPct)));
  const steal = Object.values(runs).flatMap((byTarget) => Object.values(byTarget).flatMap((rounds) => rounds.map((round) => round.stealPct)));
  return values.length === 0 ? undefined : { medianPct: median(values), maxPct: Math.max(...values), stealMedianPct: median(steal), loadAverage: os.loadavg()[0] };
}

export function versionOf(require, name) {
  try {
    return require(`${name}/package.json`).version;
  } catch {
    return 'not installed';
  }
}

export function gitDescription() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return `${commit}${dirty ? ' + uncommitted src/ changes' : ''}`;
  } catch {
    return 'unknown';
  }
}

export function replaceBlock(file, begin, end, content) {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  const block = `${begin}\n${content}${end}`;
  const next = from >= 0 && to > from ? text.slice(0, from) + block + text.slice(to + end.length) : `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${block}\n`;
  writeFileSync(file, next);
}

