import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, loadConfig, type Config } from '../../../src/config/index.js';
import { FIELD_NAMES, FIELDS, type FieldName } from '../../../src/config/fields.js';

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

/** Where a case's config.json goes: a fresh directory, removed afterwards. */
function withConfigDir<T>(file: string | undefined, run: (configDir: string) => T): T {
  const configDir = mkdtempSync(join(dir, 'c-'));
  try {
    if (file !== undefined) writeFileSync(join(configDir, 'config.json'), file);
    return run(configDir);
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }
}

/** The one-line error contract: a ConfigError (not a crash), "config error: …", one line, no secret. */
function assertClearError(error: unknown, env: Record<string, string>, file: string | undefined): asserts error is ConfigError {
  assert.ok(error instanceof ConfigError, `not a ConfigError: ${(error as Error)?.stack ?? String(error)}`);
  const message = error.message;
  assert.ok(message.startsWith('config error: '), message);
  assert.ok(!/[\r\n\u2028\u2029]/.test(message), `one line: ${JSON.stringify(message)}`);
  for (const value of secretsIn(env, file ?? '')) assert.ok(!message.includes(value), `the message echoes a secret: ${message}`);
}

/** What `run` throws; fails the test when it returns instead. */
function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  assert.fail('expected a ConfigError, but the configuration loaded');
}

/** Either outcome is allowed here (the input is arbitrary); each is checked for what it must be. */
function check(env: Record<string, string>, file: string | undefined): void {
  withConfigDir(file, (configDir) => {
    let config: Config;
    try {
      config = loadConfig({ env, cwd: configDir });
    } catch (error) {
      assertClearError(error, env, file);
      return;
    }
    assertDeepFrozen(config);
  });
}

// Cases built valid or invalid by construction, so each is held to one exact outcome.

/** A secret long enough for any token field; no "," or "|", so lists split around it. */
const token = fc.stringMatching(/^[A-Za-z0-9_-]{10,20}$/).map((s) => `${MARK}${s}`);
/** A secret too short for admin_token or a key (10-15 characters). */
const shortToken = fc.stringMatching(/^[A-Za-z0-9]{4,9}$/).map((s) => `${MARK}${s}`);
const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);

/** A field given a valid value: how it is written in the environment and in config.json, and where Config shows it. */
interface ValidField<T> {
  field: FieldName;
  value: fc.Arbitrary<T>;
  env(value: T): string;
  file(value: T): unknown;
  read(config: Config): unknown;
  expected(value: T): unknown;
}
const validField = <T>(spec: ValidField<T>): ValidField<unknown> => spec as ValidField<unknown>;
const asJson = <T>(value: T): string => JSON.stringify(value);

const VALID_FIELDS: Array<ValidField<unknown>> = [
  validField({ field: 'port', value: fc.integer({ min: 0, max: 65535 }), env: String, file: (v) => v, read: (c) => c.server.port, expected: (v) => v }),
  validField({ field: 'temperature', value: fc.integer({ min: 0, max: 200 }).map((n) => n / 100), env: String, file: (v) => v, read: (c) => c.defaults.temperature, expected: (v) => v }),
  validField({ field: 'log_level', value: fc.constantFrom('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'), env: (v) => v, file: (v) => v, read: (c) => c.log.level, expected: (v) => v }),
  validField({ field: 'access_token', value: fc.uniqueArray(token, { minLength: 1, maxLength: 3 }), env: (v) => v.join(','), file: (v) => v, read: (c) => c.accessTokens, expected: (v) => v }),
  validField({ field: 'api_key', value: fc.uniqueArray(token, { minLength: 1, maxLength: 3 }), env: (v) => v.join('|'), file: (v) => v.join('|'), read: (c) => c.upstream.apiKeys, expected: (v) => v }),
  validField({ field: 'admin_token', value: token, env: (v) => v, file: (v) => v, read: (c) => c.admin.token, expected: (v) => v }),
  validField({ field: 'base_url', value: fc.oneof(fc.constantFrom('https://api.openai.com/v1', 'http://127.0.0.1:8080/v1/'), token.map((t) => `https://user:${t}@llm.example/v1`)), env: (v) => v, file: (v) => v, read: (c) => c.upstream.baseUrl, expected: (v) => v.replace(/\/+$/, '') }),
  validField({ field: 'proxy', value: token.map((t) => `http://user:${t}@proxy.example:8080`), env: (v) => v, file: (v) => v, read: (c) => c.upstream.proxy, expected: (v) => v }),
  validField({ field: 'database_url', value: fc.oneof(fc.constant('sqlite::memory:'), token.map((t) => `postgres://gw:${t}@db.example:5432/gateway`)), env: (v) => v, file: (v) => v, read: (c) => c.databaseUrl, expected: (v) => v }),
  validField({ field: 'model_alias', value: fc.dictionary(name, name, { maxKeys: 3, noNullPrototype: true }), env: asJson, file: (v) => v, read: (c) => ({ ...c.modelAlias }), expected: (v) => v }),
  validField({
    field: 'keys',
    value: fc.uniqueArray(fc.record({ name, key: token, rpm: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }) }, { requiredKeys: ['name', 'key'] }), { maxLength: 3, selector: (entry) => entry.name }),
    env: asJson,
    file: (v) => v,
    read: (c) => c.keys.map((key) => [key.name, key.secret, key.rpm]),
    expected: (v) => v.map((entry) => [entry.name, entry.key, entry.rpm]),
  }),
  validField({
    field: 'upstreams',
    value: fc.uniqueArray(fc.record({ name, type: fc.constant('openai'), base_url: fc.constantFrom('https://api.openai.com/v1', 'http://127.0.0.1:9/v1'), api_keys: fc.uniqueArray(token, { minLength: 1, maxLength: 2 }) }), { minLength: 1, maxLength: 2, selector: (entry) => entry.name }),
    env: asJson,
    file: (v) => v,
    read: (c) => c.upstreams.map((upstream) => [upstream.name, upstream.apiKeys]),
    expected: (v) => v.map((entry) => [entry.name, entry.api_keys]),
  }),
];

/** Each chosen field is given in the environment, the file, or both (two values; the environment's wins). */
interface ValidCase {
  env: Record<string, string>;
  file: Record<string, unknown>;
  checks: Array<{ field: FieldName; read(config: Config): unknown; expected: unknown }>;
}
const validCase: fc.Arbitrary<ValidCase> = fc
  .uniqueArray(fc.constantFrom(...VALID_FIELDS), { minLength: 1, maxLength: 6, selector: (spec) => spec.field })
  .chain((specs) => fc.tuple(...specs.map((spec) => fc.tuple(fc.constant(spec), spec.value, spec.value, fc.constantFrom('env', 'file', 'both')))))
  .map((placed) => {
    const built: ValidCase = { env: {}, file: {}, checks: [] };
    for (const [spec, envValue, fileValue, where] of placed) {
      if (where !== 'file') built.env[FIELDS[spec.field].env[0]!] = spec.env(envValue);
      if (where !== 'env') built.file[spec.field] = spec.file(fileValue);
      built.checks.push({ field: spec.field, read: spec.read, expected: spec.expected(where === 'file' ? fileValue : envValue) });
    }
    return built;
  });

/**
 * One mistake put into an otherwise valid case, and the words the error must start with. A
 * mistake in the file removes the field from the environment, which would otherwise win.
 */
interface Defect {
  apply(env: Record<string, string>, file: Record<string, unknown>): { env: Record<string, string>; file: string | undefined };
  culprit(path: string): string;
}
const withoutEnv = (env: Record<string, string>, field: FieldName): Record<string, string> => Object.fromEntries(Object.entries(env).filter(([variable]) => !FIELDS[field].env.includes(variable)));
const inEnv = (variable: string, text: string) => (env: Record<string, string>, file: Record<string, unknown>) => ({ env: { ...env, [variable]: text }, file: JSON.stringify(file) });
const inFile = (field: FieldName, value: unknown) => (env: Record<string, string>, file: Record<string, unknown>) => ({ env: withoutEnv(env, field), file: JSON.stringify({ ...file, [field]: value }) });

const defect: fc.Arbitrary<Defect> = fc.oneof(
  fc.integer({ min: 65536, max: 1e9 }).map((port) => ({ apply: inEnv('PORT', String(port)), culprit: () => `config error: PORT (env var) is ${port}: expected an integer` })),
  fc.constantFrom('80', 80.5, -1, true, [80]).map((port) => ({ apply: inFile('port', port), culprit: (path: string) => `config error: "port" in ${path} is ${JSON.stringify(port)}: expected an integer` })),
  shortToken.map((secret) => ({ apply: inEnv('ADMIN_TOKEN', secret), culprit: () => `config error: ADMIN_TOKEN (env var) is invalid (value hidden: ${secret.length} characters)` })),
  fc.tuple(name, shortToken).map(([keyName, secret]) => ({ apply: inEnv('KEYS', JSON.stringify([{ name: keyName, key: secret }])), culprit: () => 'config error: keys[0].key in KEYS (env var) is invalid (value hidden: ' })),
  fc.tuple(name, token, token).map(([keyName, one, two]) => ({ apply: inFile('keys', [{ name: keyName, key: one }, { name: keyName, key: two }]), culprit: () => `config error: keys[1].name "${keyName}" is used twice` })),
  fc.tuple(token, token).map(([listed, misspelt]) => ({ apply: inFile('upstreams', [{ name: 'u', type: 'openai', base_url: 'https://api.openai.com/v1', api_keys: [listed], api_key: misspelt }]), culprit: () => 'config error: upstreams[0].api_key is not an upstream field' })),
  fc.constant({ apply: (env: Record<string, string>, file: Record<string, unknown>) => ({ env, file: JSON.stringify({ ...file, temprature: 1 }) }), culprit: (path: string) => `config error: unknown key "temprature" in ${path}` }),
  token.map((secret) => ({ apply: (env: Record<string, string>) => ({ env, file: `{"api_key": "${secret}` }), culprit: (path: string) => `config error: ${path} is not valid JSON: syntax error at line 1` })),
  token.map((secret) => ({ apply: inEnv('MODEL_ALIAS', `{"a": "${secret}"`), culprit: () => 'config error: MODEL_ALIAS (env var) is not valid JSON: syntax error at line 1' })),
  token.map((secret) => ({ apply: inEnv('BASE_URL', `ftp://user:${secret}@llm.example/v1`), culprit: () => 'config error: BASE_URL (env var) is "ftp://user:***@llm.example/v1": expected an http:// or https:// URL' })),
  token.map((secret) => ({ apply: inFile('database_url', `mysql://user:${secret}@db.example/gateway`), culprit: (path: string) => `config error: "database_url" in ${path} is "mysql://user:***@db.example/gateway": expected sqlite:` })),
  fc.constant({ apply: (env: Record<string, string>, file: Record<string, unknown>) => ({ env: { ...env, TEMPREATURE: '0.5', TEMPERATURE: '0.7' }, file: JSON.stringify(file) }), culprit: () => 'config error: TEMPREATURE and TEMPERATURE (env vars) are both set, to different values' }),
);

describe('loadConfig (property)', () => {
  it('any environment over the real variable names: a frozen Config or one clear line, no secret in it', () => {
    fc.assert(fc.property(envArb, (env) => check(env, undefined)), { numRuns: 400 });
  });

  it('any config.json content: a frozen Config or one clear line, no secret in it', () => {
    fc.assert(fc.property(fileArb, (file) => check({}, file)), { numRuns: 400 });
  });

  it('environment and file together, valid by construction: a frozen Config holding each value given, the environment winning over the file', () => {
    fc.assert(
      fc.property(validCase, ({ env, file, checks }) => {
        const fileText = JSON.stringify(file);
        const config = withConfigDir(fileText, (configDir) => loadConfig({ env, cwd: configDir }));
        assertDeepFrozen(config);
        for (const { field, read, expected } of checks) assert.deepEqual(read(config), expected, field);
      }),
      { numRuns: 150 },
    );
  });

  it('environment and file together with one mistake: one clear line naming that mistake, no secret in it', () => {
    fc.assert(
      fc.property(validCase, defect, (base, mistake) => {
        const { env, file } = mistake.apply(base.env, base.file);
        withConfigDir(file, (configDir) => {
          const error = catchError(() => loadConfig({ env, cwd: configDir }));
          assertClearError(error, env, file);
          const culprit = mistake.culprit(join(configDir, 'config.json'));
          assert.ok(error.message.startsWith(culprit), `expected "${culprit}…", got: ${error.message}`);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('nesting past 64 levels, in the file or a JSON variable: refused with one clear line, even 100,000 levels deep (no stack overflow)', () => {
    const nested = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);
    const deep = nested(100_000);
    const keyWith = (metadata: string): string => `[{"name":"a","key":"0123456789abcdef0123","metadata":{"x":${metadata}}}]`;
    const refused = (env: Record<string, string>, file: string | undefined, message: (path: string) => string): void =>
      withConfigDir(file, (configDir) => {
        const error = catchError(() => loadConfig({ env, cwd: configDir }));
        assertClearError(error, env, file);
        assert.equal(error.message, message(join(configDir, 'config.json')));
      });
    const fileTooDeep = (path: string): string => `config error: ${path} nests arrays and objects deeper than 64 levels`;
    refused({}, `{"keys":${keyWith(deep)}}`, fileTooDeep);
    refused({}, `{"port":${deep}}`, fileTooDeep);
    refused({ KEYS: keyWith(deep) }, undefined, () => 'config error: KEYS (env var) nests arrays and objects deeper than 64 levels');
    refused({ MODEL_ALIAS: `{"a":${deep}}` }, undefined, () => 'config error: MODEL_ALIAS (env var) nests arrays and objects deeper than 64 levels');
    // The limit itself: 64 levels load, 65 do not (the top-level object and the keys entry count).
    refused({}, `{"_comment":${nested(64)}}`, fileTooDeep);
    withConfigDir(`{"_comment":${nested(63)}}`, (configDir) => assertDeepFrozen(loadConfig({ env: {}, cwd: configDir })));
    refused({ KEYS: keyWith(nested(62)) }, undefined, () => 'config error: KEYS (env var) nests arrays and objects deeper than 64 levels');
    assert.equal(withConfigDir(undefined, (configDir) => loadConfig({ env: { KEYS: keyWith(nested(61)) }, cwd: configDir })).keys.length, 1);
  });

  it('a key name with a line break or an escape code is shown escaped, on one line', () => {
    const configDir = mkdtempSync(join(dir, 'names-'));
    writeFileSync(join(configDir, 'config.json'), '{"port\\n\\u001b[2J": 1}');
    assert.throws(() => loadConfig({ env: {}, cwd: configDir }), (error: Error) => error.message.startsWith(`config error: unknown key "port\\n\\u001b[2J" in ${join(configDir, 'config.json')} (known keys: api_key, `));
  });
});
