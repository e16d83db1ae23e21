import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { FIELDS } from '../../../src/config/fields.js';
import { REPO_ROOT, tempConfigDir } from '../../helpers/gateway.js';

/**
 * The deployment examples under deploy/ are not run by CI (no Docker engine, no cluster), so what
 * can be checked offline is checked here: every variable they give the gateway is a real setting
 * whose value loads, shutdown grace outlasts drain_timeout, readiness asks /healthz, and
 * nginx.conf passes `nginx -t` (when nginx is installed; .ci/run installs it).
 */

const read = (name: string): string => readFileSync(join(REPO_ROOT, 'deploy', name), 'utf8');
const ENV_NAMES = new Set(Object.values(FIELDS).flatMap((field) => field.env));

/** Stand-ins for the `${VAR:?…}` the operator exports before `docker compose up`. */
const substitute = (value: string): string => value.replace(/\$\{([A-Z_]+)[^}]*\}/g, (_all, name: string) => (name === 'OPENAI_API_KEY' ? 'sk-sample-0123456789' : `sample-${name.toLowerCase()}-0123456789`));

const indentOf = (line: string): number => line.length - line.trimStart().length;

/**
 * The environment of each gateway service in the compose file, read line by line (no YAML
 * dependency for this): the `x-gateway` anchor's, merged with the service's own.
 */
function composeGatewayEnvs(text: string): Map<string, Record<string, string>> {
  const blocks = new Map<string, Record<string, string>>();
  const lines = text.split('\n');
  let section = '';
  let owner = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const top = /^([a-z][\w-]*):/.exec(line);
    if (top) owner = section = top[1]!;
    const service = /^ {2}([a-z][\w-]*):\s*$/.exec(line);
    if (service && section === 'services') owner = `services.${service[1]}`;
    if (!/^\s+environment:/.test(line)) continue;
    const env: Record<string, string> = {};
    const depth = indentOf(line);
    for (i += 1; i < lines.length && (lines[i]!.trim() === '' || indentOf(lines[i]!) > depth); i++) {
      const entry = /^\s+([A-Z][A-Z0-9_]*):\s*(.*)$/.exec(lines[i]!);
      if (entry) env[entry[1]!] = substitute(entry[2]!.replace(/^"(.*)"$/, '$1'));
    }
    i -= 1;
    blocks.set(owner, env);
  }
  const base = blocks.get('x-gateway') ?? {};
  const gateways = new Map<string, Record<string, string>>();
  for (const match of text.matchAll(/^ {2}(gateway\d+):\s*$/gm)) gateways.set(match[1]!, { ...base, ...blocks.get(`services.${match[1]}`) });
  return gateways;
}

/** The gateway container's env in the Kubernetes example; secrets get sample values. */
function kubernetesEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  const samples: Record<string, string> = { DATABASE_URL: 'postgres://user:password@postgres:5432/openai_api', REDIS_URL: 'redis://redis:6379' };
  for (const match of text.matchAll(/- name: ([A-Z][A-Z0-9_]*)\n\s+(value: (.*)|valueFrom:)/g)) {
    env[match[1]!] = match[3] !== undefined ? match[3].replace(/^"(.*)"$/, '$1') : (samples[match[1]!] ?? `sample-${match[1]!.toLowerCase()}-0123456789`);
  }
  return env;
}

function assertLoads(env: Record<string, string>, where: string): ReturnType<typeof loadConfig> {
  const unknown = Object.keys(env).filter((name) => !ENV_NAMES.has(name));
  assert.deepEqual(unknown, [], `${where} sets variables the gateway does not read (src/config/fields.ts)`);
  return loadConfig({ env, cwd: tempConfigDir() });
}

describe('deploy/ examples', () => {
  it('docker-compose.yml runs three gateways on a shared PostgreSQL and Redis with settings that load', () => {
    const text = read('docker-compose.yml');
    const gateways = composeGatewayEnvs(text);
    assert.deepEqual([...gateways.keys()], ['gateway1', 'gateway2', 'gateway3']);
    for (const [name, env] of gateways) {
      const config = assertLoads(env, name);
      assert.match(config.databaseUrl, /^postgres:\/\/.*@postgres:5432\//, name);
      assert.equal(config.redis.url, 'redis://redis:6379', name);
      const grace = Number(/stop_grace_period: (\d+)s/.exec(text)?.[1]);
      assert.ok(grace > config.drainTimeoutMs / 1000, `${name}: stop_grace_period (${grace} s) outlasts drain_timeout`);
    }
    assert.equal(gateways.get('gateway1')!.ADMIN_HOST, '0.0.0.0');
    for (const service of ['nginx', 'postgres', 'redis']) assert.match(text, new RegExp(`^ {2}${service}:\\s*$`, 'm'));
  });

  it('kubernetes.yaml reads secrets from a Secret, probes /healthz and outlasts drain_timeout', () => {
    const text = read('kubernetes.yaml');
    const env = kubernetesEnv(text);
    const config = assertLoads(env, 'kubernetes.yaml');
    for (const secret of ['DATABASE_URL', 'REDIS_URL', 'APIKEY', 'ACCESS_TOKEN']) {
      assert.match(text, new RegExp(`- name: ${secret}\\n\\s+valueFrom:\\n\\s+secretKeyRef:`), `${secret} comes from the Secret`);
    }
    const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(text)?.[1]);
    assert.ok(grace > config.drainTimeoutMs / 1000 + 5, `terminationGracePeriodSeconds (${grace}) outlasts drain_timeout plus the preStop pause`);
    assert.match(text, /readinessProbe:\n\s+httpGet: \{ path: \/healthz, port: http \}/);
    assert.match(text, /^kind: Deployment$/m);
    assert.match(text, /^kind: Service$/m);
  });

  it('nginx.conf streams unbuffered, keeps HTTP/1.1 connections, upgrades WebSockets, and names the compose gateways', () => {
    const text = read('nginx.conf');
    for (const directive of ['proxy_buffering off;', 'proxy_http_version 1.1;', 'proxy_set_header Upgrade $http_upgrade;', 'proxy_set_header Connection $connection_upgrade;', 'keepalive 64;']) {
      assert.ok(text.includes(directive), directive);
    }
    assert.match(text, /location ~ \^\/v1\/\(responses\|realtime\)/);
    assert.deepEqual([...text.matchAll(/server (gateway\d+):8080;/g)].map((match) => match[1]), ['gateway1', 'gateway2', 'gateway3']);
  });

  it('nginx.conf passes nginx -t', (t) => {
    if (spawnSync('nginx', ['-v']).error) {
      t.skip('nginx is not installed (.ci/run installs it)');
      return;
    }
    // The compose service names resolve only inside compose: point them at loopback to check the rest.
    const dir = mkdtempSync(join(tmpdir(), 'openai-api-nginx-'));
    writeFileSync(join(dir, 'nginx.conf'), read('nginx.conf').replace(/gateway\d+:8080/g, '127.0.0.1:8080'));
    const result = spawnSync('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', `pid ${join(dir, 'nginx.pid')};`], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
  });
});
