// How each target is started, reached and accounted: its client headers, the key the upstream
// must see from it, and the processes whose CPU time and memory are its cost.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gatewayConfig } from './gateway-config.mjs';
import { nginxBinary, nginxConfig } from './nginx.mjs';
import { freePort, processTree, startProcess, waitForPort } from './proc.mjs';

const BENCH = fileURLToPath(new URL('../', import.meta.url));
const ROOT = join(BENCH, '..');
const LOOP_MONITOR = pathToFileURL(join(BENCH, 'lib', 'loop-monitor.mjs')).href;
const PROFILE_ON_SIGNAL = pathToFileURL(join(BENCH, 'lib', 'profile-on-signal.mjs')).href;
const LOOPBACK_ONLY = pathToFileURL(join(BENCH, 'lib', 'loopback-only.mjs')).href;
export const CHAT_PATH = '/v1/chat/completions';

/**
 * A target as the scenarios see it. `upstreamKey` is what the fake upstream must receive;
 * `clientKey` is what the client sends (for the gateway, relay and nginx it must never arrive).
 */
function target(fields) {
  return {
    node: false,
    pids() {
      return processTree(this.server.pid);
    },
    stop() {
      return this.server.stop();
    },
    ...fields,
  };
}

/** The client talks to the fake upstream itself, with the upstream key. */
export function directTarget(upstream) {
  return target({
    name: 'direct',
    description: 'client → fake upstream',
    origin: `http://127.0.0.1:${upstream.port}`,
    clientKey: 'sk-upstream-direct',
    upstreamKey: 'sk-upstream-direct',
    headers: {},
    server: upstream.server,
    stop: async () => undefined,
  });
}

export async function relayTarget(upstream, { cpu, dir, name = 'relay', cpuProfileDir }) {
  const port = await freePort();
  const server = startProcess('relay', process.execPath, ['--import', cpuProfileDir ? PROFILE_ON_SIGNAL : LOOP_MONITOR, join(BENCH, 'lib', 'relay.mjs')], {
    cpu,
    env: { PORT: String(port), UPSTREAM_URL: `http://127.0.0.1:${upstream.port}`, UPSTREAM_KEY: 'sk-upstream-relay', BENCH_LOOP_REPORT: join(dir, `${name}.loop.json`), BENCH_CPU_PROFILE_DIR: cpuProfileDir ?? '' },
  });
  await server.readyLine();
  return target({
    name: 'relay',
    description: 'node:http + undici Pool.stream, swaps Authorization',
    origin: `http://127.0.0.1:${port}`,
    clientKey: 'sk-client-relay-0000',
    upstreamKey: 'sk-upstream-relay',
    headers: {},
    server,
    node: !cpuProfileDir,
    loopReport: cpuProfileDir ? undefined : join(dir, `${name}.loop.json`),
    cpuProfileDir,
  });
}

/**
 * The gateway in its production shape: an app key with rpm/tpm/budget limits, metering to SQLite,
 * one JSON log line per request written to a file (so logging costs what it costs).
 */
export async function gatewayTarget(upstream, { cpu, dir, name = 'gateway', keys = 1, upstreams = 0, cpuProfileDir, env = {}, note = '' }) {
  const home = join(dir, name);
  mkdirSync(home, { recursive: true });
  const port = await freePort();
  const { config, clientKey, upstreamKey } = gatewayConfig({ upstreamPort: upstream.port, keys, upstreams });
  writeFileSync(join(home, 'config.json'), JSON.stringify(config));
  const server = startProcess(name, process.execPath, ['--import', cpuProfileDir ? PROFILE_ON_SIGNAL : LOOP_MONITOR, join(ROOT, 'bin', 'openai-api.js'), 'serve'], {
    cpu,
    cwd: home,
    env: { HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: `sqlite:${join(home, 'gateway.sqlite')}`, LOG_LEVEL: 'info', BENCH_LOOP_REPORT: join(home, 'loop.json'), BENCH_CPU_PROFILE_DIR: cpuProfileDir ?? '', ...env },
    stdoutFile: join(home, 'gateway.log'),
    stderrFile: join(home, 'gateway.err'),
  });
  await waitForPort(port, { process: server, timeoutMs: 120_000 });
  return target({
    name,
    description: `openai-api: app key with limits, SQLite metering, request log to a file${upstreams > 0 ? `, ${upstreams} upstreams` : ''}${note}`,
    origin: `http://127.0.0.1:${port}`,
    clientKey,
    upstreamKey,
    headers: {},
    server,
    node: !cpuProfileDir,
    home,
    keys,
    upstreams,
    loopReport: cpuProfileDir ? undefined : join(home, 'loop.json'),
    cpuProfileDir,
    logFile: join(home, 'gateway.log'),
    database: join(home, 'gateway.sqlite'),
  });
}

/** nginx as a reverse proxy, when installed: the floor for any proxy. Returns undefined (with a reason) when missing. */
export async function nginxTarget(upstream, { cpu, dir, name = 'nginx' }) {
  const binary = nginxBinary();
  if (!binary) return { skipped: 'nginx is not installed (apt-get install nginx); skipping the nginx target' };
  const home = join(dir, name);
  mkdirSync(home, { recursive: true, mode: 0o777 });
  const port = await freePort();
  writeFileSync(join(home, 'nginx.conf'), nginxConfig({ home, port, upstreamPort: upstream.port, upstreamKey: 'sk-upstream-nginx' }));
  const server = startProcess('nginx', binary, ['-p', home, '-c', join(home, 'nginx.conf'), '-e', join(home, 'error.log'), '-g', 'daemon off;'], { cpu });
  await waitForPort(port, { process: server });
  const version = spawnSync(binary, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '');
  return target({ name: 'nginx', description: `nginx ${version.replace(/^nginx\//, '')}: keepalive upstream, proxy_buffering off`, version, origin: `http://127.0.0.1:${port}`, clientKey: 'sk-client-nginx-0000', upstreamKey: 'sk-upstream-nginx', headers: {}, server });
}

/**
 * Portkey's open-source gateway from npm. It has no server-held provider keys: the caller sends
 * the upstream key itself, with the provider and the custom host in x-portkey-* headers.
 */
export async function portkeyTarget(upstream, { cpu, dir, name = 'portkey' }) {
  const home = join(BENCH, 'node_modules', '@portkey-ai', 'gateway');
  const entry = join(home, 'build', 'start-server.js');
  const version = JSON.parse(readFileSync(join(home, 'package.json'), 'utf8')).version;
  const port = await freePort();
  const server = startProcess('portkey', process.execPath, ['--import', LOOPBACK_ONLY, '--import', LOOP_MONITOR, entry, `--port=${port}`, '--headless'], {
    cpu,
    cwd: dir,
    env: { BENCH_LOOP_REPORT: join(dir, `${name}.loop.json`) },
    stdoutFile: join(dir, `${name}.log`),
    stderrFile: join(dir, `${name}.log`),
  });
  await waitForPort(port, { process: server, timeoutMs: 60_000 });
  return target({
    name: 'portkey',
    description: `@portkey-ai/gateway ${version} (@hono/node-server pinned 1.13.8)`,
    version,
    origin: `http://127.0.0.1:${port}`,
    clientKey: 'sk-upstream-portkey',
    upstreamKey: 'sk-upstream-portkey',
    headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `http://127.0.0.1:${upstream.port}/v1` },
    server,
    node: true,
    loopReport: join(dir, `${name}.loop.json`),
  });
}
