import { z } from 'zod';
import { parseByteSize } from './byte-size.js';
import { keyEntrySchema } from './key-entry.js';
import { upstreamsSchema } from './upstream-entry.js';
import { MEMORY_BOUNDS } from '../domain/conversation.js';

/** How a value arriving as an environment string is read before validation. */
export type EnvKind = 'string' | 'number' | 'boolean' | 'json';

export interface FieldSpec {
  /** Environment variables, first one set wins (the seed's name first, aliases after). */
  readonly env: readonly string[];
  readonly envKind: EnvKind;
  /** What a valid value looks like, for the one-line start-up error. */
  readonly expect: string;
  readonly schema: z.ZodType;
}

const listOf = (separator: string) =>
  z.union([z.string(), z.array(z.string())]).transform((value) =>
    (Array.isArray(value) ? value : value.split(separator)).map((item) => item.trim()).filter((item) => item.length > 0),
  );

const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
});

const seconds = (max: number) => z.number().positive().max(max);
const byteSize = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const bytes = parseByteSize(value);
  if (bytes === undefined) ctx.addIssue({ code: 'custom', message: 'not a size' });
  return bytes ?? 0;
});

/** One model's price in USD per 1M tokens, as in `prices` and `fallback_price`. */
const modelPrice = z
  .object({
    input: z.number().min(0),
    cached_input: z.number().min(0).optional(),
    cache_write_input: z.number().min(0).optional(),
    output: z.number().min(0).optional(),
    audio_input: z.number().min(0).optional(),
    audio_output: z.number().min(0).optional(),
  })
  .strict();

const field = (env: readonly string[], envKind: EnvKind, expect: string, schema: z.ZodType): FieldSpec => ({ env, envKind, expect, schema });

/**
 * Every top-level key of config.json, with the environment variables that override it.
 * The seed's names (including its TEMPREATURE spelling) come first so existing deployments keep working.
 */
export const FIELDS = {
  api_key: field(['APIKEY', 'OPENAI_API_KEY'], 'string', 'an upstream key, or several separated by "|"', listOf('|')),
  access_token: field(['ACCESS_TOKEN'], 'string', 'a token, or several separated by ","', listOf(',')),
  allow_origin: field(['ALLOW_ORIGIN'], 'string', '"*" or origins separated by "," (e.g. "https://a.example,https://b.example")', listOf(',')),
  port: field(['PORT'], 'number', 'an integer from 0 to 65535', z.number().int().min(0).max(65535)),
  host: field(['HOST'], 'string', 'an address to listen on, e.g. "0.0.0.0" or "127.0.0.1"', z.string().min(1)),
  allow_anonymous: field(['ALLOW_ANONYMOUS'], 'boolean', 'true or false', z.boolean()),
  bot_desc: field(['BOT_DESC'], 'string', 'text (the persona system message)', z.string()),
  max_tokens: field(['MAX_TOKENS'], 'number', 'a positive integer', z.number().int().positive()),
  model: field(['MODEL'], 'string', 'a model name, e.g. "gpt-4o-mini"', z.string().min(1)),
  temperature: field(['TEMPREATURE', 'TEMPERATURE'], 'number', 'a number from 0 to 2', z.number().min(0).max(2)),
  top_p: field(['TOP_P'], 'number', 'a number from 0 to 1', z.number().min(0).max(1)),
  frequency_penalty: field(['FREQ'], 'number', 'a number from -2 to 2', z.number().min(-2).max(2)),
  presence_penalty: field(['PRES'], 'number', 'a number from -2 to 2', z.number().min(-2).max(2)),
  proxy: field(['PROXY'], 'string', 'an http:// or https:// proxy URL, or empty for none', z.union([z.literal(''), httpUrl])),
  base_url: field(['BASE_URL', 'OPENAI_BASE_URL'], 'string', 'an http:// or https:// URL, e.g. "https://api.openai.com/v1"', httpUrl),
  body_limit: field(['BODY_LIMIT'], 'string', 'a size in bytes, or with a unit such as "1MiB"', byteSize),
  v1_body_limit: field(['V1_BODY_LIMIT'], 'string', 'a size in bytes, or with a unit such as "32MiB"', byteSize),
  log_level: field(['LOG_LEVEL'], 'string', 'one of fatal, error, warn, info, debug, trace, silent', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])),
  log_bodies: field(['LOG_BODIES'], 'boolean', 'true or false', z.boolean()),
  connect_timeout: field(['CONNECT_TIMEOUT'], 'number', 'seconds, a positive number up to 600', seconds(600)),
  first_byte_timeout: field(['FIRST_BYTE_TIMEOUT'], 'number', 'seconds, a positive number up to 3600', seconds(3600)),
  idle_timeout: field(['IDLE_TIMEOUT'], 'number', 'seconds, a positive number up to 3600', seconds(3600)),
  sse_keepalive: field(['SSE_KEEPALIVE'], 'number', 'seconds between ": keep-alive" comments, a positive number up to 3600', seconds(3600)),
  websocket_idle_timeout: field(['WEBSOCKET_IDLE_TIMEOUT'], 'number', 'seconds a WebSocket may carry no message either way before it is closed, a positive number up to 86400', seconds(86400)),
  websocket_max_duration: field(['WEBSOCKET_MAX_DURATION'], 'number', 'seconds a WebSocket may stay open in all, a positive number up to 86400', seconds(86400)),
  model_alias: field(['MODEL_ALIAS'], 'json', 'an object mapping alias to model, e.g. {"gpt4": "gpt-4o"}', z.record(z.string().min(1), z.string().min(1))),
  openai_organization: field(['OPENAI_ORGANIZATION', 'OPENAI_ORG_ID'], 'string', 'an organization id such as "org-..."', z.string()),
  openai_project: field(['OPENAI_PROJECT', 'OPENAI_PROJECT_ID'], 'string', 'a project id such as "proj_..."', z.string()),
  v1_defaults: field(['V1_DEFAULTS'], 'boolean', 'true or false', z.boolean()),
  database_url: field(['DATABASE_URL'], 'string', 'sqlite:./path.sqlite, sqlite::memory: or postgres://user@host:5432/db', z.string().regex(/^(sqlite:|postgres(ql)?:\/\/|[^:]+\.(sqlite|db)$)/)),
  redis_url: field(['REDIS_URL'], 'string', 'empty (one instance), or redis://[user:password@]host:6379[/db] or rediss:// for TLS', z.union([z.literal(''), z.string().regex(/^rediss?:\/\/[^\s]+$/)])),
  redis_prefix: field(['REDIS_PREFIX'], 'string', 'a prefix of 1 to 64 characters for every Redis key this gateway writes, e.g. "openai-api:"', z.string().min(1).max(64)),
  keys: field(['KEYS'], 'json', 'an array of app keys ({"name", "key" or "key_env", limits…})', z.array(keyEntrySchema)),
  admin_token: field(['ADMIN_TOKEN'], 'string', 'a token of at least 16 characters (empty turns the admin API off)', z.union([z.literal(''), z.string().min(16)])),
  admin_host: field(['ADMIN_HOST'], 'string', 'an address for the admin API to listen on (default 127.0.0.1)', z.string().min(1)),
  admin_port: field(['ADMIN_PORT'], 'number', 'an integer from 0 to 65535', z.number().int().min(0).max(65535)),
  trust_proxy: field(['TRUST_PROXY'], 'boolean', 'true or false', z.boolean()),
  metrics_token: field(['METRICS_TOKEN'], 'string', 'a token of at least 16 characters for scraping GET /metrics (empty: the admin token only)', z.union([z.literal(''), z.string().min(16)])),
  metrics_public: field(['METRICS_PUBLIC'], 'boolean', 'true or false', z.boolean()),
  prices: field(['PRICES'], 'json', 'an object of model → {"input", "cached_input", "cache_write_input", "output", "audio_input", "audio_output"} in USD per 1M tokens', z.record(z.string().min(1), modelPrice)),
  fallback_price: field(['FALLBACK_PRICE'], 'json', '{"input", "cached_input", "cache_write_input", "output", "audio_input", "audio_output"} in USD per 1M tokens, e.g. {"input": 5, "output": 15}', modelPrice),
  max_header_size: field(['MAX_HEADER_SIZE'], 'string', 'a size in bytes, or with a unit such as "16KiB"', byteSize),
  request_timeout: field(['REQUEST_TIMEOUT'], 'number', 'seconds a client may take to send a whole request, a positive number up to 3600', seconds(3600)),
  keep_alive_timeout: field(['KEEP_ALIVE_TIMEOUT'], 'number', 'seconds an idle client connection is kept, a positive number up to 3600', seconds(3600)),
  max_connections: field(['MAX_CONNECTIONS'], 'number', 'an integer from 1 to 1000000', z.number().int().min(1).max(1_000_000)),
  drain_timeout: field(['DRAIN_TIMEOUT'], 'number', 'seconds to let in-flight requests finish at shutdown, 0 to 3600', z.number().min(0).max(3600)),
  fail_open: field(['FAIL_OPEN'], 'boolean', 'true or false', z.boolean()),
  usage_flush_interval: field(['USAGE_FLUSH_INTERVAL'], 'number', 'seconds, a positive number up to 60', z.number().positive().max(60)),
  cache_ttl: field(['CACHE_TTL'], 'number', 'seconds an answer stays in the response cache for every key that sets no cache_ttl of its own, an integer from 0 (off) to 31536000', z.number().int().min(0).max(31_536_000)),
  cache_max_ttl: field(['CACHE_MAX_TTL'], 'number', 'the most seconds a request may ask the response cache for itself (Cache-Control: max-age), an integer from 0 (requests cannot turn it on) to 31536000', z.number().int().min(0).max(31_536_000)),
  cache_max_bytes: field(['CACHE_MAX_BYTES'], 'string', 'a size in bytes, or with a unit such as "64MiB" (the in-process response cache)', byteSize),
  cache_max_entry_bytes: field(['CACHE_MAX_ENTRY_BYTES'], 'string', 'a size in bytes, or with a unit such as "1MiB" (the largest answer cached)', byteSize),
  usage_retention: field(['USAGE_RETENTION'], 'number', 'days of raw usage records to keep, an integer from 0 (forever) to 36500', z.number().int().min(0).max(36_500)),
  memory: field(['MEMORY'], 'boolean', 'true or false (conversations of /api/chat, when a request sends conversation_id)', z.boolean()),
  memory_max_tokens: field(['MEMORY_MAX_TOKENS'], 'number', `tokens of conversation history sent with a prompt, an integer from 1 to ${MEMORY_BOUNDS.maxTokens}`, z.number().int().positive().max(MEMORY_BOUNDS.maxTokens)),
  memory_max_turns: field(['MEMORY_MAX_TURNS'], 'number', `turns a conversation remembers, an integer from 1 to ${MEMORY_BOUNDS.maxTurns}`, z.number().int().positive().max(MEMORY_BOUNDS.maxTurns)),
  memory_ttl: field(['MEMORY_TTL'], 'number', `seconds a conversation is kept after its last message, an integer from 1 to ${MEMORY_BOUNDS.ttlSeconds} (365 days)`, z.number().int().positive().max(MEMORY_BOUNDS.ttlSeconds)),
  upstreams: field(['UPSTREAMS'], 'json', 'an array of upstreams ({"name", "type", "base_url", "api_keys" or "api_keys_env", "weight", "models", …})', upstreamsSchema),
  max_attempts: field(['MAX_ATTEMPTS'], 'number', 'an integer from 1 to 10 (upstream attempts per request, retries included)', z.number().int().min(1).max(10)),
  retry_base_delay: field(['RETRY_BASE_DELAY'], 'number', 'seconds, a number from 0 to 10', z.number().min(0).max(10)),
  cooldown: field(['COOLDOWN'], 'number', 'seconds a rate-limited upstream key rests when no Retry-After came, a positive number up to 3600', seconds(3600)),
  circuit_error_ratio: field(['CIRCUIT_ERROR_RATIO'], 'number', 'a ratio above 0 and up to 1, e.g. 0.5', z.number().positive().max(1)),
  circuit_min_requests: field(['CIRCUIT_MIN_REQUESTS'], 'number', 'a positive integer up to 100000', z.number().int().positive().max(100_000)),
  circuit_window: field(['CIRCUIT_WINDOW'], 'number', 'seconds, a positive number up to 3600', seconds(3600)),
  circuit_open: field(['CIRCUIT_OPEN'], 'number', 'seconds, a positive number up to 3600', seconds(3600)),
} as const satisfies Record<string, FieldSpec>;

export type FieldName = keyof typeof FIELDS;
export const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];
