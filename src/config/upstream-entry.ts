import { z } from 'zod';
import type { Config } from './config.js';
import { nearestName } from './near-miss.js';

/**
 * Model names and the globs of `upstreams[].models`.
 *
 * A model name is 1-256 letters, digits and `. _ - : / @ +` — enough for `gpt-4o-2024-08-06`,
 * `ft:gpt-4o-mini:org::id`, `meta-llama/Llama-3-8B`, `qwen2.5:7b`, `openai/gpt-4o:free`. A glob is
 * such a name in which `*` stands for any run of characters (none included); nothing else is a
 * wildcard, and matching is whole-name and case-sensitive, as the providers' APIs are. A glob with
 * any other character (a space, `?`, `[`, a quote) or an empty one could never match what a client
 * sends, so it stops start-up instead of leaving an upstream silently unused.
 */
export const MODEL_NAME = /^[A-Za-z0-9._:/@+-]{1,256}$/;
export const MODEL_GLOB = /^[A-Za-z0-9._:/@+*-]{1,256}$/;
const MODEL_GLOB_RULE = 'must be a model name or glob: 1-256 letters, digits, ".", "_", "-", ":", "/", "@" or "+", with "*" for any run of characters (e.g. "gpt-4o*")';

export const UPSTREAM_TYPES = ['openai', 'azure', 'openai-compatible', 'anthropic'] as const;
export type UpstreamType = (typeof UPSTREAM_TYPES)[number];

/** The API an upstream speaks: OpenAI's (openai, azure, openai-compatible) or Anthropic's Messages API. */
export type UpstreamProtocol = 'openai' | 'anthropic';

export function protocolOf(type: UpstreamType): UpstreamProtocol {
  return type === 'anthropic' ? 'anthropic' : 'openai';
}

/** The `anthropic-version` header sent when an entry names none (https://docs.anthropic.com/en/api/versioning). */
export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

/** One upstream as the pool uses it: keys resolved, URL without a trailing slash, defaults applied. */
export interface UpstreamConfig {
  readonly name: string;
  readonly type: UpstreamType;
  readonly baseUrl: string;
  /** Empty only for an `openai-compatible` upstream that needs no key (e.g. Ollama), or the seed's keyless default. */
  readonly apiKeys: readonly string[];
  readonly weight: number;
  /** Globs (see MODEL_GLOB); `["*"]` serves every model. */
  readonly models: readonly string[];
  /** Extra request headers, names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** Azure only. */
  readonly apiVersion: string | undefined;
  /** Azure only: model → deployment name. */
  readonly deployments: Readonly<Record<string, string>>;
  /** The entry's own proxy, else the global `proxy`; undefined connects directly. */
  readonly proxy: string | undefined;
  /** Whether the gateway may add `stream_options.include_usage` for this upstream (false for Anthropic, which has no such option). */
  readonly includeUsage: boolean;
  /** Whether the upstream takes WebSockets (Responses WebSocket mode, Realtime); OpenAI and Azure do, most compatible providers and Anthropic do not. */
  readonly websockets: boolean;
  /** Anthropic only: the `anthropic-version` header of every request. */
  readonly anthropicVersion: string | undefined;
}

/** Retries, cool-down and circuit breaker of the upstream pool (config seconds turned into ms). */
export interface PoolSettings {
  readonly maxAttempts: number;
  readonly retryBaseDelayMs: number;
  /** How long a key rests after a 429 that carried no Retry-After. */
  readonly cooldownMs: number;
  readonly circuitErrorRatio: number;
  readonly circuitMinRequests: number;
  readonly circuitWindowMs: number;
  readonly circuitOpenMs: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Azure deployment names: letters, digits, "-", "_" and ".".
const DEPLOYMENT = /^[A-Za-z0-9._-]{1,64}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// eslint-disable-next-line no-control-regex -- the point is to refuse control characters (header injection).
const HEADER_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
// Set by the gateway or the connection itself; an entry overriding them would break requests.
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-authorization']);

const isHttpUrl = (value: string, allowQuery: boolean): boolean => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && (allowQuery || (url.search === '' && url.hash === ''));
  } catch {
    return false;
  }
};

const ENTRY_FIELDS = ['name', 'type', 'base_url', 'api_keys', 'api_keys_env', 'weight', 'models', 'headers', 'api_version', 'deployments', 'proxy', 'include_usage', 'websockets', 'anthropic_version'];
// Anthropic dates its API versions, e.g. "2023-06-01".
const ANTHROPIC_VERSION = /^\d{4}-\d{2}-\d{2}$/;

const keyList = z.union([z.string(), z.array(z.string())]).transform((value) =>
  (Array.isArray(value) ? value : value.split('|')).map((item) => item.trim()).filter((item) => item.length > 0),
);

/** One entry of `upstreams` in config.json (snake_case, as users write it). */
export const upstreamEntrySchema = z
  .object({
    name: z.string().regex(NAME, { message: 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit' }),
    type: z.enum(UPSTREAM_TYPES, { message: 'must be "openai", "azure", "openai-compatible" or "anthropic"' }),
    base_url: z.string().refine((value) => isHttpUrl(value, false), { message: 'must be an http:// or https:// URL without ?query or #fragment, e.g. "https://api.openai.com/v1"' }),
    api_keys: keyList.optional(),
    api_keys_env: z.string().regex(ENV_NAME, { message: 'must be the name of an environment variable, e.g. "OPENAI_KEYS"' }).optional(),
    weight: z.number({ message: 'must be a number' }).positive({ message: 'must be a positive number' }).max(1000, { message: 'must be at most 1000' }).default(1),
    models: z.array(z.string().regex(MODEL_GLOB, { message: MODEL_GLOB_RULE })).min(1, { message: 'must list at least one model or glob (leave it out for "*")' }).default(['*']),
    headers: z.record(z.string(), z.string({ message: 'must be a string' })).optional(),
    api_version: z.string().min(1, { message: 'must not be empty' }).optional(),
    deployments: z.record(z.string(), z.string({ message: 'must be a deployment name' })).optional(),
    proxy: z.string().refine((value) => value === '' || isHttpUrl(value, true), { message: 'must be an http:// or https:// proxy URL, or "" to connect directly' }).optional(),
    include_usage: z.boolean({ message: 'must be true or false' }).optional(),
    websockets: z.boolean({ message: 'must be true or false' }).optional(),
    anthropic_version: z.string().regex(ANTHROPIC_VERSION, { message: 'must be a dated API version, e.g. "2023-06-01"' }).optional(),
  })
  // Unknown fields are reported by resolveUpstreams, by name only: zod's strict mode or an issue
  // on the field would print its value, and `api_key: "sk-…"` is the likeliest typo of all.
  .loose()
  .superRefine((entry, ctx) => {
    const issue = (path: Array<string | number>, message: string): void => ctx.addIssue({ code: 'custom', path, message });
    if (entry.api_keys !== undefined && entry.api_keys_env !== undefined) issue(['api_keys_env'], 'use api_keys or api_keys_env, not both');
    if (entry.type !== 'openai-compatible' && entry.api_keys_env === undefined && (entry.api_keys === undefined || entry.api_keys.length === 0)) {
      issue(['api_keys'], `an upstream of type "${entry.type}" needs at least one key: set api_keys, or api_keys_env naming an environment variable (only "openai-compatible" may go without)`);
    }
    if (entry.type === 'azure') {
      if (entry.api_version === undefined) issue(['api_version'], 'an azure upstream needs api_version, e.g. "2024-10-21"');
      if (entry.deployments === undefined || Object.keys(entry.deployments).length === 0) issue(['deployments'], 'an azure upstream needs deployments, an object of model → deployment name, e.g. {"gpt-4o": "my-gpt4o"}');
    } else {
      if (entry.api_version !== undefined) issue(['api_version'], 'only azure upstreams take api_version');
      if (entry.deployments !== undefined) issue(['deployments'], 'only azure upstreams take deployments');
    }
    if (entry.type === 'anthropic') {
      // Anthropic streams always carry usage and have no WebSocket API: these could only mislead.
      if (entry.include_usage === true) issue(['include_usage'], 'an anthropic upstream always reports usage and takes no stream_options; leave include_usage out');
      if (entry.websockets === true) issue(['websockets'], 'an anthropic upstream has no WebSockets; leave websockets out');
    } else if (entry.anthropic_version !== undefined) {
      issue(['anthropic_version'], 'only anthropic upstreams take anthropic_version');
    }
    for (const [model, deployment] of Object.entries(entry.deployments ?? {})) {
      if (!MODEL_NAME.test(model)) issue(['deployments', model], 'the key must be a model name: letters, digits, ".", "_", "-", ":", "/", "@" or "+" (no "*")');
      else if (!DEPLOYMENT.test(deployment)) issue(['deployments', model], 'must be a deployment name: 1-64 letters, digits, ".", "_" or "-"');
    }
    for (const [name, value] of Object.entries(entry.headers ?? {})) {
      if (!HEADER_NAME.test(name)) issue(['headers', name], 'the key must be an HTTP header name');
      else if (RESERVED_HEADERS.has(name.toLowerCase())) issue(['headers', name], 'is set by the gateway or the connection and cannot be configured');
      else if (!HEADER_VALUE.test(value)) issue(['headers', name], 'must not contain line breaks or control characters');
    }
  });

/** The `upstreams` array: at least one entry, names unique (they appear in logs, metrics and response headers). */
export const upstreamsSchema = z
  .array(upstreamEntrySchema)
  .min(1, { message: 'needs at least one upstream; leave "upstreams" out to use api_key and base_url' })
  .superRefine((entries, ctx) => {
    const seen = new Map<string, number>();
    entries.forEach((entry, index) => {
      const first = seen.get(entry.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `is already the name of upstreams[${first}]; names must be unique` });
      else seen.set(entry.name, index);
    });
  });

export type UpstreamEntry = z.output<typeof upstreamEntrySchema>;

/**
 * Shapes validated entries into UpstreamConfig: keys read from `api_keys_env` (split on "|"), the
 * global proxy applied where the entry has none (`proxy: ""` opts out). Problems that need the
 * environment to see are reported through `fail`, one line naming `upstreams[i].field`.
 */
export function resolveUpstreams(entries: readonly UpstreamEntry[], env: NodeJS.ProcessEnv, globalProxy: string | undefined, fail: (message: string) => never): UpstreamConfig[] {
  return entries.map((entry, index) => {
    for (const field of Object.keys(entry)) {
      if (ENTRY_FIELDS.includes(field)) continue;
      const suggestion = nearestName(field, ENTRY_FIELDS);
      fail(`config error: upstreams[${index}].${field} is not an upstream field${suggestion ? `; did you mean "${suggestion}"?` : ` (known: ${ENTRY_FIELDS.join(', ')})`}`);
    }
    let apiKeys = entry.api_keys ?? [];
    if (entry.api_keys_env !== undefined) {
      const value = env[entry.api_keys_env];
      apiKeys = (value ?? '').split('|').map((item) => item.trim()).filter((item) => item.length > 0);
      if (apiKeys.length === 0) fail(`config error: upstreams[${index}].api_keys_env names ${entry.api_keys_env}, which is ${value === undefined ? 'not set' : 'empty'}`);
    }
    const first = apiKeys.findIndex((key, at) => apiKeys.indexOf(key) !== at);
    if (first !== -1) fail(`config error: upstreams[${index}].api_keys lists key #${apiKeys.indexOf(apiKeys[first]!)} again as key #${first}; list each key once`);
    return {
      name: entry.name,
      type: entry.type,
      baseUrl: entry.base_url.replace(/\/+$/, ''),
      apiKeys,
      weight: entry.weight,
      models: entry.models,
      headers: Object.fromEntries(Object.entries(entry.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value])),
      apiVersion: entry.api_version,
      deployments: entry.deployments ?? {},
      proxy: entry.proxy === undefined ? globalProxy : entry.proxy === '' ? undefined : entry.proxy,
      includeUsage: entry.type !== 'anthropic' && (entry.include_usage ?? true),
      websockets: entry.type !== 'anthropic' && (entry.websockets ?? entry.type !== 'openai-compatible'),
      anthropicVersion: entry.type === 'anthropic' ? (entry.anthropic_version ?? DEFAULT_ANTHROPIC_VERSION) : undefined,
    };
  });
}

/**
 * The upstreams the pool is built from: the `upstreams` entries, or — when there are none — the
 * seed's one upstream from `api_key`, `base_url` and `proxy`, named "default". Its OpenAI
 * organization and project travel as its own headers, so they never reach another provider.
 */
export function upstreamsFromConfig(config: Config): UpstreamConfig[] {
  if (config.upstreams.length > 0) return [...config.upstreams];
  const { upstream } = config;
  const headers: Record<string, string> = {};
  if (upstream.organization) headers['openai-organization'] = upstream.organization;
  if (upstream.project) headers['openai-project'] = upstream.project;
  return [
    {
      name: 'default',
      type: 'openai',
      baseUrl: upstream.baseUrl,
      apiKeys: upstream.apiKeys,
      weight: 1,
      models: ['*'],
      headers,
      apiVersion: undefined,
      deployments: {},
      proxy: upstream.proxy,
      includeUsage: true,
      websockets: true,
      anthropicVersion: undefined,
    },
  ];
}
