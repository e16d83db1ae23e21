import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, loadConfig, type Config } from '../../../src/config/index.js';
import { FIELD_NAMES, FIELDS } from '../../../src/config/fields.js';

// Whatever config.json and the environment hold, loadConfig gives a frozen Config or one
// ConfigError: a single line starting "config error:", never echoing a secret — never a crash.

const ENV_NAMES = [...new Set(Object.values(FIELDS).flatMap((field) => field.env))];
/** Secrets are generated with this marker, so a test can find any that leaks into a message. */
const MARK = 'S3CR3T';

const dir = mkdtempSync(join(tmpdir(), 'openai-api-config-property-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Strings that look like what people write, and strings that do not. */
const text = fc.oneof(
  fc.constantFrom('', ' ', 'true', 'false', 'yes', '0', '1', '-1', '0.5', '2.5', '1e3', 'NaN', 'Infinity', '16KiB', '1MiB', '2 GB', 'http://127.0.0.1:1/v1', 'https://api.openai.com/v1', 'ftp://x', 'sqlite::memory:', 'postgres://u@h/db', 'info', '*', 'gpt-4o-mini', '{}', '[]', '{"a":"b"}', '[{"name":"x"}]', '\u0000', 'a\nb', '"'),
  fc.string({ maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.double().map(String),
  fc.integer().map(String),
);
const secret = fc.string({ unit: 'binary', minLength: 0, maxLength: 20 }).map((s) => `${MARK}${s}`);
/** A URL carrying a password, put where a URL goes — or where it does not. */
const urlWithPassword = fc.tuple(fc.constantFrom('http', 'https', 'socks5', 'postgres', 'mysql'), fc.stringMatching(/^[A-Za-z0-9_-]{4,12}$/)).map(([scheme, password]) => `${scheme}://user:${MARK}${password}@proxy.example:8080/x`);
const jsonWithSecrets = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.array(fc.record({ name: fc.oneof(fc.constant('app'), fc.string({ maxLength: 8 })), key: secret, rpm: fc.oneof(fc.integer(), fc.string({ maxLength: 3 })) }, { requiredKeys: ['name'] }), { maxLength: 2 }),
  fc.array(fc.record({ name: fc.constantFrom('a', 'b', 'bad name'), type: fc.constantFrom('openai', 'azure', 'openai-compatible', 'other'), base_url: fc.constantFrom('http://127.0.0.1:1/v1', 'nope', 'https://x.example/v1?q=1'), api_keys: fc.oneof(secret, fc.array(secret, { maxLength: 2 })), api_key: secret }, { requiredKeys: [] }), { maxLength: 2 }),
);

const envArb = fc.dictionary(fc.constantFrom(...ENV_NAMES), fc.oneof({ arbitrary: text, weight: 8 }, urlWithPassword), { maxKeys: 6 }).chain((base) =>
  fc.record({ apiKey: fc.option(secret, { nil: undefined }), accessToken: fc.option(secret, { nil: undefined }), adminToken: fc.option(secret, { nil: undefined }), keys: fc.option(jsonWithSecrets, { nil: undefined }), upstreams: fc.option(jsonWithSecrets, { nil: undefined }) }).map((secrets) => {
    const env: Record<string, string> = { ...base };
    if (secrets.apiKey !== undefined) env.APIKEY = secrets.apiKey;
    if (secrets.accessToken !== undefined) env.ACCESS_TOKEN = secrets.accessToken;
    if (secrets.adminToken !== undefined) env.ADMIN_TOKEN = secrets.adminToken;
    if (secrets.keys !== undefined) env.KEYS = JSON.stringify(secrets.keys);
    if (secrets.upstreams !== undefined) env.UPSTREAMS = JSON.stringify(secrets.upstreams);
    // Keys that point at other variables (key_env, api_keys_env) resolve against the same map.
    env.APP_KEY_FROM_ENV = `${MARK}-from-env-0123456789`;
    return env;
  }),
);

/** A config.json: any JSON at all, an object over the real keys (and near misses), or text that is not JSON. */
const fileArb = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)), weight: 1 },
  {
    arbitrary: fc
      .dictionary(fc.oneof({ arbitrary: fc.constantFrom(...FIELD_NAMES), weight: 8 }, fc.constantFrom('temprature', '_comment', '$schema', 'a\nb', '')), fc.oneof(fc.jsonValue({ maxDepth: 2 }), text, jsonWithSecrets, urlWithPassword), { maxKeys: 6 })
      .map((object) => JSON.stringify(object)),
    weight: 6,
  },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 1 },
  { arbitrary: fc.constantFrom('', '\uFEFF{}', '{"port": 8080,}', '{"api_key": "sk-unterminated'), weight: 1 },
);

function secretsIn(env: Record<string, string>, file: string): string[] {
  const found = new Set<string>();
  const pattern = new RegExp(`${MARK}[^"\\\\|,@]*`, 'g');
  for (const value of Object.values(env)) for (const match of value.matchAll(pattern)) found.add(match[0]);
  for (const match of file.matchAll(pattern)) found.add(match[0]);
  // Too short to tell apart from ordinary words in a message.
  return [...found].filter((value) => value.length >= MARK.length + 4);
}

function assertDeepFrozen(value: unknown, path = 'config'): void {
  if (value === null || typeof value !== 'object') return;
  assert.ok(Object.isFrozen(value), `${path} is frozen`);
  for (const [key, child] of Object.entries(value)) assertDeepFrozen(child, `${path}.${key}`);
}

const outcomes = { config: 0, error: 0 };

function check(env: Record<string, string>, file: string | undefined): void {
  const configDir = mkdtempSync(join(dir, 'c-'));
  if (file !== undefined) writeFileSync(join(configDir, 'config.json'), file);
  let config: Config | undefined;
  try {
    config = loadConfig({ env, cwd: configDir });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `not a ConfigError: ${(error as Error)?.stack ?? String(error)}`);
    const message = error.message;
    assert.ok(message.startsWith('config error: '), message);
    assert.ok(!/[\r\n\u2028\u2029]/.test(message), `one line: ${JSON.stringify(message)}`);
    for (const value of secretsIn(env, file ?? '')) assert.ok(!message.includes(value), `the message echoes a secret: ${message}`);
    outcomes.error++;
    return;
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }
  assertDeepFrozen(config);
  outcomes.config++;
}

describe('loadConfig (property)', () => {
  it('any environment over the real variable names: a frozen Config or one clear line, no secret in it', () => {
    fc.assert(fc.property(envArb, (env) => check(env, undefined)), { numRuns: 400 });
  });

  it('any config.json content: a frozen Config or one clear line, no secret in it', () => {
    fc.assert(fc.property(fileArb, (file) => check({}, file)), { numRuns: 400 });
  });

  it('both at once', () => {
    fc.assert(fc.property(envArb, fileArb, (env, file) => check(env, file)), { numRuns: 300 });
    // The generators reach both outcomes, not only errors.
    // (The split depends on the random seed; ~5 % of runs end in a valid config.)
    assert.ok(outcomes.config > 20 && outcomes.error > 20, JSON.stringify(outcomes));
  });

  it('nesting 100,000 levels deep, in the file or a JSON variable: one clear line, no stack overflow', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    check({}, `{"keys":[{"name":"a","key":"0123456789abcdef0123","metadata":{"x":${deep}}}]}`);
    check({ KEYS: `[{"name":"a","key":"0123456789abcdef0123","metadata":{"x":${deep}}}]` }, undefined);
    check({}, `{"port":${deep}}`);
    assert.throws(() => loadConfig({ env: { MODEL_ALIAS: `{"a":${deep}}` }, cwd: dir }), /^ConfigError: config error: MODEL_ALIAS \(env var\) nests arrays and objects deeper than 64 levels$/);
  });

  it('a key name with a line break or an escape code is shown escaped, on one line', () => {
    const configDir = mkdtempSync(join(dir, 'names-'));
    writeFileSync(join(configDir, 'config.json'), '{"port\\n\\u001b[2J": 1}');
    assert.throws(() => loadConfig({ env: {}, cwd: configDir }), (error: Error) => error.message.startsWith(`config error: unknown key "port\\n\\u001b[2J" in ${join(configDir, 'config.json')} (known keys: api_key, `));
  });
});
