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
    readonly connectTimeoutMs: number;
    readonly firstByteTimeoutMs: number;
    readonly idleTimeoutMs: number;
  };
  readonly sseKeepaliveMs: number;
  readonly modelAlias: Readonly<Record<string, string>>;
  readonly v1Defaults: boolean;
  readonly log: {
    readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
    readonly bodies: boolean;
  };
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
