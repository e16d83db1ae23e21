import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ModelPrice } from '../domain/model-price.js';
import type { ChatDefaults, Config, ConfiguredKey } from './config.js';
import type { KeyEntry } from './key-entry.js';
import { DEFAULTS } from './defaults.js';
import { FIELD_NAMES, FIELDS, type EnvKind, type FieldName, type FieldSpec } from './fields.js';
import { nestedDeeperThan } from './json-depth.js';
import { jsonErrorOffset, lineAndColumn } from './json-error-offset.js';
import { nearestName } from './near-miss.js';
import { resolveUpstreams } from './upstream-entry.js';
import { tracingFromEnv } from './tracing-config.js';

const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Control characters (and the JS line separators) as escapes: `\n`, `\u001b`. */
function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (char) => SHORT_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A configuration that cannot be used; its message is one line naming the key, its source and what is expected. */
export class ConfigError extends Error {
  constructor(message: string) {
    // Names quoted from the file or the environment (an unknown key, a record key) may hold line
    // breaks or escape codes: escaped, the error stays one line that cannot forge another.
    super(escapeControls(message));
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** Defaults to process.env; tests pass their own. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** From `--config PATH`; wins over CONFIG_FILE. */
  configPath?: string;
}

type Source = { kind: 'file'; file: string } | { kind: 'env'; name: string } | { kind: 'default' };

function describeSource(key: string, source: Source): string {
  if (source.kind === 'env') return `${source.name} (env var)`;
  if (source.kind === 'file') return `"${key}" in ${source.file}`;
  return `"${key}" (default)`;
}

function describeValue(value: unknown): string {
  // A URL's password (a proxy or database URL put in the wrong place) is not shown.
  const text = (JSON.stringify(value) ?? String(value)).replace(/(\/\/[^/?#@\s:"]*):[^/?#@\s"]*@/g, '$1:***@');
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`config error: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const offset = jsonErrorOffset(text);
    const where = offset >= 0 ? `at ${lineAndColumn(text, offset)}` : (error as Error).message.replace(/\s+/g, ' ');
    throw new ConfigError(`config error: ${path} is not valid JSON: syntax error ${where}`);
  }
  if (nestedDeeperThan(parsed, MAX_CONFIG_DEPTH)) throw new ConfigError(`config error: ${path} nests arrays and objects deeper than ${MAX_CONFIG_DEPTH} levels`);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config error: ${path} must hold a JSON object ({"api_key": ...}), not ${Array.isArray(parsed) ? 'an array' : typeof parsed}`);
  }
  return parsed as Record<string, unknown>;
}

function checkKnownKeys(file: Record<string, unknown>, path: string): void {
  for (const key of Object.keys(file)) {
    if (key in FIELDS) continue;
    // Keys starting with "_" or "$" are comments or editor hints ("$schema").
    if (key.startsWith('_') || key.startsWith('$')) continue;
    const suggestion = nearestName(key, FIELD_NAMES);
    throw new ConfigError(
      `config error: unknown key "${key}" in ${path}${suggestion ? ` — did you mean "${suggestion}"?` : ` (known keys: ${FIELD_NAMES.join(', ')})`}`,
    );
  }
}

/** Far beyond any real configuration; deeper values would overflow the recursive walks that follow (validation, freezing). */
const MAX_CONFIG_DEPTH = 64;

// Values under these names are secrets: an error names the field and never echoes what it holds.
const SECRET_FIELD = /(?:^|[.[])(?:api_keys?|key|access_token|admin_token|metrics_token|secret|password)(?:$|[.\]])/;
const SECRET_NAME = /^(?:api_keys?|key|access_token|admin_token|metrics_token|secret|password)$/;

/** Whether a value holds, at any depth (bounded by MAX_CONFIG_DEPTH), a field named like a secret. */
function holdsSecret(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const current = stack.pop();
    if (current === null || typeof current !== 'object') continue;
    for (const [name, child] of Object.entries(current)) {
      if (!Array.isArray(current) && SECRET_NAME.test(name)) return true;
      stack.push(child);
    }
  }
  return false;
}

function shownValue(path: string, value: unknown): string {
  if (value !== undefined && (SECRET_FIELD.test(path) || holdsSecret(value))) return `is invalid (value hidden: ${typeof value === 'string' ? `${value.length} characters` : typeof value})`;
  return value === undefined ? 'missing' : `is ${describeValue(value)}`;
}

/** One line for a failed field; nested fields (keys[2].rpm) name their path and zod's reason. */
function describeIssue(key: string, source: Source, raw: unknown, spec: FieldSpec, issue: { path: PropertyKey[]; message: string } | undefined): string {
  if (!issue || issue.path.length === 0 || typeof raw !== 'object' || raw === null) {
    return `config error: ${describeSource(key, source)} ${shownValue(key, raw)}: expected ${spec.expect}`;
  }
  let path = key;
  let value: unknown = raw;
  for (const part of issue.path) {
    path += typeof part === 'number' ? `[${part}]` : `.${String(part)}`;
    value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[part] : undefined;
  }
  const where = source.kind === 'env' ? `${path} in ${source.name} (env var)` : source.kind === 'file' ? `"${path}" in ${source.file}` : `"${path}"`;
  // An object holding a secret (a whole keys[i] entry) is not echoed either.
  const shown = shownValue(SECRET_FIELD.test(path) || (typeof value === 'object' && value !== null && Object.keys(value).some((name) => SECRET_NAME.test(name))) ? `${path}.key` : path, value);
  return `config error: ${where} ${shown}: ${issue.message}`;
}

function coerceEnv(value: string, kind: EnvKind, name: string): unknown {
  const trimmed = value.trim();
  switch (kind) {
    case 'string':
      return value;
    case 'number':
      return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed) ? Number(trimmed) : value;
    case 'boolean': {
      const lower = trimmed.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(lower)) return true;
      if (['false', '0', 'no', 'off'].includes(lower)) return false;
      return value;
    }
    case 'json': {
      let parsed: unknown;
      try {
        parsed = JSON.parse(trimmed);
      } catch {
        // Not echoed: KEYS and UPSTREAMS hold secrets.
        throw new ConfigError(`config error: ${name} (env var) is not valid JSON: syntax error at ${lineAndColumn(trimmed, Math.max(0, jsonErrorOffset(trimmed)))}`);
      }
      if (nestedDeeperThan(parsed, MAX_CONFIG_DEPTH)) throw new ConfigError(`config error: ${name} (env var) nests arrays and objects deeper than ${MAX_CONFIG_DEPTH} levels`);
      return parsed;
    }
  }
}

/** The first non-empty variable of the field's names; empty variables count as unset, as in the seed. */
function readEnv(key: FieldName, spec: FieldSpec, env: NodeJS.ProcessEnv): { name: string; value: unknown } | undefined {
  const present = spec.env.filter((name) => env[name] !== undefined && env[name] !== '');
  if (present.length === 0) return undefined;
  const [first] = present as [string, ...string[]];
  // TEMPREATURE and TEMPERATURE both set to different values is a mistake worth stopping for.
  if (key === 'temperature' && present.length > 1 && env[present[0]!] !== env[present[1]!]) {
    throw new ConfigError(`config error: TEMPREATURE and TEMPERATURE (env vars) are both set, to different values; keep one`);
  }
  return { name: first, value: coerceEnv(env[first]!, spec.envKind, first) };
}

/** Reads config.json (or CONFIG_FILE / --config), overlays environment variables, validates, freezes. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicitPath = options.configPath ?? (env.CONFIG_FILE ? env.CONFIG_FILE : undefined);
  const path = resolve(cwd, explicitPath ?? 'config.json');
  let file: Record<string, unknown> = {};
  let configFile: string | undefined;
  if (existsSync(path)) {
    file = readConfigFile(path);
    configFile = path;
    checkKnownKeys(file, path);
  } else if (explicitPath !== undefined) {
    throw new ConfigError(`config error: config file ${path} does not exist (named by ${options.configPath ? '--config' : 'CONFIG_FILE'})`);
  }

  const values: Record<string, unknown> = {};
  for (const key of FIELD_NAMES) {
    const spec: FieldSpec = FIELDS[key];
    const fromEnv = readEnv(key, spec, env);
    let source: Source;
    let raw: unknown;
    if (fromEnv) {
      source = { kind: 'env', name: fromEnv.name };
      raw = fromEnv.value;
    } else if (file[key] !== undefined && file[key] !== null) {
      source = { kind: 'file', file: path };
      raw = file[key];
    } else {
      values[key] = DEFAULTS[key];
      continue;
    }
    const result = spec.schema.safeParse(raw);
    if (!result.success) throw new ConfigError(describeIssue(key, source, raw, spec, result.error.issues[0]));
    values[key] = result.data;
  }
  return buildConfig(values as ConfigValues, configFile, env);
}

/** The validated values, one per field, before they are shaped into Config. */
type ConfigValues = { -readonly [K in keyof typeof DEFAULTS]: (typeof DEFAULTS)[K] extends readonly string[] ? string[] : (typeof DEFAULTS)[K] extends number ? number : (typeof DEFAULTS)[K] extends boolean ? boolean : (typeof DEFAULTS)[K] extends string ? string : (typeof DEFAULTS)[K] };

/** Resolves each configured key's secret (`key`, or the variable named by `key_env`) and checks names are unique. */
function resolveKeys(entries: readonly KeyEntry[], env: NodeJS.ProcessEnv): ConfiguredKey[] {
  const seen = new Set<string>();
  return entries.map((entry, index) => {
    if (seen.has(entry.name)) throw new ConfigError(`config error: keys[${index}].name "${entry.name}" is used twice; key names must be unique`);
    seen.add(entry.name);
    const { key, key_env: keyEnv, ...attributes } = entry;
    const secret = key ?? (keyEnv ? env[keyEnv] : undefined);
    if (secret === undefined || secret.length < 16) {
      throw new ConfigError(`config error: keys[${index}] ("${entry.name}") names key_env ${keyEnv}, which is ${secret === undefined ? 'not set' : 'shorter than 16 characters'}`);
    }
    return { ...attributes, name: entry.name, secret };
  });
}

type PriceEntry = { input: number; cached_input?: number; cache_write_input?: number; output?: number; audio_input?: number; audio_output?: number };

/** A `prices` entry as the price table takes it (camelCase, absent fields left out). */
function priceOf(entry: PriceEntry): ModelPrice {
  const price: ModelPrice = { input: entry.input };
  if (entry.cached_input !== undefined) price.cachedInput = entry.cached_input;
  if (entry.cache_write_input !== undefined) price.cacheWrite = entry.cache_write_input;
  if (entry.output !== undefined) price.output = entry.output;
  if (entry.audio_input !== undefined) price.audioInput = entry.audio_input;
  if (entry.audio_output !== undefined) price.audioOutput = entry.audio_output;
  return price;
}

function buildConfig(v: ConfigValues, configFile: string | undefined, env: NodeJS.ProcessEnv): Config {
  const defaults: ChatDefaults = {
    botDesc: v.bot_desc,
    model: v.model,
    maxTokens: v.max_tokens,
    temperature: v.temperature,
    topP: v.top_p,
    frequencyPenalty: v.frequency_penalty,
    presencePenalty: v.presence_penalty,
  };
  const origins = v.allow_origin;
  const config: Config = {
    configFile,
    server: {
      host: v.host,
      port: v.port,
      allowAnonymous: v.allow_anonymous,
      bodyLimit: v.body_limit,
      v1BodyLimit: v.v1_body_limit,
      maxHeaderSize: v.max_header_size,
      requestTimeoutMs: v.request_timeout * 1000,
      keepAliveTimeoutMs: v.keep_alive_timeout * 1000,
      maxConnections: v.max_connections,
    },
    accessTokens: v.access_token,
    allowOrigin: origins.length === 0 || origins.includes('*') ? '*' : origins,
    defaults,
    upstream: {
      baseUrl: v.base_url.replace(/\/+$/, ''),
      apiKeys: v.api_key,
      proxy: v.proxy === '' ? undefined : v.proxy,
      organization: v.openai_organization === '' ? undefined : v.openai_organization,
      project: v.openai_project === '' ? undefined : v.openai_project,
      connectTimeoutMs: v.connect_timeout * 1000,
      firstByteTimeoutMs: v.first_byte_timeout * 1000,
      idleTimeoutMs: v.idle_timeout * 1000,
    },
    upstreams: resolveUpstreams(v.upstreams, env, v.proxy === '' ? undefined : v.proxy, (message) => {
      throw new ConfigError(message);
    }),
    pool: {
      maxAttempts: v.max_attempts,
      retryBaseDelayMs: v.retry_base_delay * 1000,
      cooldownMs: v.cooldown * 1000,
      circuitErrorRatio: v.circuit_error_ratio,
      circuitMinRequests: v.circuit_min_requests,
      circuitWindowMs: v.circuit_window * 1000,
      circuitOpenMs: v.circuit_open * 1000,
    },
    sseKeepaliveMs: v.sse_keepalive * 1000,
    websocket: { idleTimeoutMs: v.websocket_idle_timeout * 1000, maxDurationMs: v.websocket_max_duration * 1000 },
    modelAlias: v.model_alias,
    v1Defaults: v.v1_defaults,
    databaseUrl: v.database_url,
    redis: { url: v.redis_url, prefix: v.redis_prefix },
    keys: resolveKeys(v.keys, env),
    admin: { token: v.admin_token, host: v.admin_host, port: v.admin_port, trustProxy: v.trust_proxy },
    metrics: { token: v.metrics_token, public: v.metrics_public },
    prices: Object.fromEntries(Object.entries(v.prices).map(([model, p]) => [model, priceOf(p)])),
    fallbackPrice: v.fallback_price && priceOf(v.fallback_price),
    failOpen: v.fail_open,
    drainTimeoutMs: v.drain_timeout * 1000,
    usageFlushIntervalMs: v.usage_flush_interval * 1000,
    usageRetentionDays: v.usage_retention,
    cache: { ttlMs: v.cache_ttl * 1000, maxRequestTtlMs: v.cache_max_ttl * 1000, maxBytes: v.cache_max_bytes, maxEntryBytes: v.cache_max_entry_bytes },
    memory: { enabled: v.memory, maxTokens: v.memory_max_tokens, maxTurns: v.memory_max_turns, ttlSeconds: v.memory_ttl },
    log: { level: v.log_level as Config['log']['level'], bodies: v.log_bodies },
    tracing: tracingFromEnv(env, (message) => {
      throw new ConfigError(`config error: ${message}`);
    }),
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
