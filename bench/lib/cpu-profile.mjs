// Reads a .cpuprofile written by `node --cpu-prof` and lists where the time went: by package or
// file (self time), the gateway's own functions by total time (self plus callees), and the
// hottest functions by self time. Compiled dist/*.js locations are mapped back to src/*.ts through
// their source maps, so every line names the TypeScript to look at.
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const maps = new Map();

function sourceMapFor(file) {
  if (!maps.has(file)) {
    const path = `${file}.map`;
    maps.set(file, existsSync(path) ? new SourceMap(JSON.parse(readFileSync(path, 'utf8'))) : undefined);
  }
  return maps.get(file);
}

/** `file:line` (1-based), through the source map when there is one; and the file's group. */
function locate(frame, root) {
  const { url, lineNumber, columnNumber } = frame;
  if (!url) return { where: '(native)', group: frame.functionName.startsWith('(') ? frame.functionName : '(native)' };
  if (url.startsWith('node:')) return { where: `${url}:${lineNumber + 1}`, group: url.split('/')[0].replace(/^node:internal$/, `node:internal/${url.split('/')[2] ?? ''}`) };
  if (!url.startsWith('file://')) return { where: `${url}:${lineNumber + 1}`, group: url };
  const file = fileURLToPath(url);
  let where = `${relative(root, file)}:${lineNumber + 1}`;
  const map = file.includes('/node_modules/') ? undefined : sourceMapFor(file);
  const entry = map?.findEntry(lineNumber, columnNumber);
  if (entry?.originalSource) {
    const original = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : new URL(entry.originalSource, url).pathname;
    where = `${relative(root, original)}:${entry.originalLine + 1}`;
  }
  const modules = where.lastIndexOf('node_modules/');
  let group;
  if (modules !== -1) {
    const rest = where.slice(modules + 'node_modules/'.length).split('/');
    group = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  } else group = where.slice(0, where.lastIndexOf(':'));
  return { where, group };
}

/**
 * Self and total time per function, grouped self time, and the gateway's own (src/) functions by
 * total time. `requests`, when given, turns times into µs per request.
 */
export function summariseProfile(path, { root = process.cwd(), top = 25, requests } = {}) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const located = new Map(profile.nodes.map((node) => [node.id, locate(node.callFrame, root)]));
  const selfUs = new Map();
  const deltas = profile.timeDeltas ?? [];
  profile.samples.forEach((id, index) => selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[index + 1] ?? deltas[index] ?? 0)));

  const key = (id) => `${nodes.get(id).callFrame.functionName || '(anonymous)'} ${located.get(id).where}`;
  const self = new Map();
  const total = new Map();
  const groups = new Map();
  let sampled = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const name = nodes.get(id).callFrame.functionName;
    sampled += us;
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    self.set(key(id), (self.get(key(id)) ?? 0) + us);
    const group = located.get(id).group;
    groups.set(group, (groups.get(group) ?? 0) + us);
    // Total time: once per distinct function on the stack (recursion counts once).
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const frame = key(at);
      if (seen.has(frame)) continue;
      seen.add(frame);
      total.set(frame, (total.get(frame) ?? 0) + us);
    }
  }
  const busy = sampled - idle;
  const row = ([name, us]) => ({ name, ms: Math.round(us / 100) / 10, pctOfBusy: Math.round((us / busy) * 1000) / 10, usPerRequest: requests ? Math.round((us / requests) * 10) / 10 : undefined });
  const rank = (map, keep = () => true) =>
    [...map.entries()]
      .filter(([name]) => !/^\((root|program|idle)\)/.test(name) && keep(name))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(row);
  return {
    sampledMs: Math.round(sampled / 1000),
    busyMs: Math.round(busy / 1000),
    requests,
    byGroup: rank(groups),
    ownByTotal: rank(total, (name) => / src\//.test(name)),
    self: rank(self),
  };
}

export function profileMarkdown(summary, label) {
  const perRequest = summary.requests !== undefined;
  const table = (rows, first) =>
    [
      `| ${first} | ms | % of busy |${perRequest ? ' µs/request |' : ''}`,
      `|---|--:|--:|${perRequest ? '--:|' : ''}`,
      ...rows.map((item) => `| \`${item.name}\` | ${item.ms} | ${item.pctOfBusy} |${perRequest ? ` ${item.usPerRequest} |` : ''}`),
    ].join('\n');
  return [
    `#### ${label}: ${summary.busyMs} ms busy of ${summary.sampledMs} ms sampled${perRequest ? `, ${summary.requests} requests` : ''}`,
    `Self time by package or file:\n\n${table(summary.byGroup, 'package / file')}`,
    `The gateway's own functions by total time (self + callees):\n\n${table(summary.ownByTotal, 'function src/file:line')}`,
    `Hottest functions by self time:\n\n${table(summary.self, 'function file:line')}`,
  ].join('\n\n') + '\n';
}

// `node bench/lib/cpu-profile.mjs FILE.cpuprofile [requests] [top]` prints the summary.
if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, requests, top = '30'] = process.argv.slice(2);
  const root = fileURLToPath(new URL('../../', import.meta.url));
  process.stdout.write(profileMarkdown(summariseProfile(file, { root, top: Number(top), requests: requests ? Number(requests) : undefined }), file));
}
