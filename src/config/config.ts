import type { KeyAttributes } from './key-entry.js';
import type { PoolSettings, UpstreamConfig } from './upstream-entry.js';
import type { ModelPrice } from '../domain/model-price.js';
import type { TracingConfig } from './tracing-config.js';
import type { MemorySettings } from '../domain/conversation.js';

/** The gateway's whole configuration, parsed once at start-up and frozen. */
export interface Config {
  /** The config file that was read, if any (for messages and reload). */
  readonly configFile: string | undefined;
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly allowAnonymous: boolean;
    /** Body limit for /api/chat (the seed's endpoint), bytes. */
    readonly bodyLimit: number;
    /** Body limit for /v1 relay requests, bytes. */
    readonly v1BodyLimit: number;
    /** Largest request head (request line + headers), bytes. */
    readonly maxHeaderSize: number;
    /** Time a client may take to send a whole request (slowloris guard). */
    readonly requestTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    readonly maxConnections: number;
  };
  readonly accessTokens: readonly string[];
  /** `'*'` or the exact origins allowed to call from a browser. */
  readonly allowOrigin: '*' | readonly string[];
  /** The owner's defaults applied to /api/chat (and to /v1 when `v1Defaults`). */
  readonly defaults: ChatDefaults;
  readonly upstream: {
    readonly baseUrl: string;
    readonly apiKeys: readonly string[];
    readonly proxy: string | undefined;
    /** Sent upstream as OpenAI-Organization / OpenAI-Project when set. */
    readonly organization: string | undefined;
    readonly project: string | undefined;
    readonly connectTimeoutMs: number;
    readonly firstByteTimeoutMs: number;
    readonly idleTimeoutMs: number;
  };
  /** The `upstreams` entries, keys resolved; empty when the seed's api_key/base_url describe the one upstream (see upstreamsFromConfig). */
  readonly upstreams: readonly UpstreamConfig[];
  /** Retries, cool-down and circuit breaker of the upstream pool. */
  readonly pool: PoolSettings;
  readonly sseKeepaliveMs: number;
  /** WebSocket relays (Responses WebSocket mode, Realtime): closed after this long without a message either way, or this long in all. */
  readonly websocket: { readonly idleTimeoutMs: number; readonly maxDurationMs: number };
  readonly modelAlias: Readonly<Record<string, string>>;
  readonly v1Defaults: boolean;
  /** `sqlite:./data/openai-api.sqlite` by default, or a postgres:// URL. */
  readonly databaseUrl: string;
  /**
   * Redis shared by every instance (limits, key changes, upstream key health, the response cache);
   * `url` is empty for one instance on its own. Every key written starts with `prefix`.
   */
  readonly redis: { readonly url: string; readonly prefix: string };
  /** App keys declared in config.json, secrets resolved (from `key` or `key_env`). */
  readonly keys: readonly ConfiguredKey[];
  /** The admin API: off when the token is empty; its own listener, loopback unless admin_host says otherwise. */
  readonly admin: {
    readonly token: string;
    readonly host: string;
    readonly port: number;
    /**
     * The admin listener sits behind a reverse proxy this gateway trusts: the web console takes the
     * client's address (sign-in rate limit) from the last `X-Forwarded-For` entry and https from
     * `X-Forwarded-Proto` (the session cookie's `Secure`). Off: the socket's own address and TLS.
     */
    readonly trustProxy: boolean;
  };
  /**
   * GET /metrics: on the admin listener with the admin token or `token` (a token alone starts that
   * listener for /metrics); on the public port too when `public`, with `token` when one is set.
   */
  readonly metrics: { readonly token: string; readonly public: boolean };
  /** USD per 1M tokens, merged over the shipped price table. */
  readonly prices: Readonly<Record<string, ModelPrice>>;
  /** USD per 1M tokens for models `prices` does not list; undefined = such models cost null (and keys with a USD budget may not use them). */
  readonly fallbackPrice: Readonly<ModelPrice> | undefined;
  /** Serve without metering when the usage database is down (default: fail closed with 503). */
  readonly failOpen: boolean;
  /** How long shutdown waits for in-flight requests and streams before ending them. */
  readonly drainTimeoutMs: number;
  readonly usageFlushIntervalMs: number;
  /** Days raw usage records are kept (the hourly rollup is kept forever); 0 keeps them forever. */
  readonly usageRetentionDays: number;
  /**
   * The response cache: the TTL of keys that set none (0 = off), the longest a request may ask
   * for itself (0 = requests cannot), the in-process store's budget and the largest answer kept.
   */
  readonly cache: { readonly ttlMs: number; readonly maxRequestTtlMs: number; readonly maxBytes: number; readonly maxEntryBytes: number };
  /** Conversations of /api/chat (issue 16): the owner's memory settings, which a key's own override. */
  readonly memory: MemorySettings;
  readonly log: {
    readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
    readonly bodies: boolean;
  };
  /** OpenTelemetry traces, from the OTEL_* environment variables only (config/tracing-config.ts). */
  readonly tracing: TracingConfig;
}

export interface ChatDefaults {
  readonly botDesc: string;
  readonly model: string;
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP: number;
  readonly frequencyPenalty: number;
  readonly presencePenalty: number;
}

/** A key from config.json: its attributes as written, plus the secret. */
export interface ConfiguredKey extends KeyAttributes {
  readonly name: string;
  readonly secret: string;
}
