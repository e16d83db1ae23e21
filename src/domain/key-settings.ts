/**
 * What an app key is allowed and given, as every folder sees it: config.json and the admin API
 * validate it (config/), storage/ persists it, auth/ precomputes it per key, policy/ and limits/
 * apply it, cli/ shows it. Pure types and the value lists their schemas are built from; nothing
 * here imports another folder.
 */

/** How a key's persona (`bot_desc`) meets the caller's own system message. */
export const PERSONA_MODES = ['prepend', 'replace', 'off'] as const;
export type PersonaMode = (typeof PERSONA_MODES)[number];

/** The period a key's budget counts over: UTC day, UTC month, or the key's whole life. */
export const BUDGET_PERIODS = ['day', 'month', 'total'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

/** Who manages a key: config.json (changed only there), the CLI or the admin API. */
export type KeySource = 'config' | 'cli' | 'admin';

/** Request parameters applied when the caller omits them; names as in OpenAI's request body. */
export interface KeyDefaults {
  model?: string;
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
}

/** A key's rate limits and budgets; null or undefined means unlimited. */
export interface KeyLimits {
  rpm?: number | null;
  tpm?: number | null;
  rpd?: number | null;
  budgetTokens?: number | null;
  budgetUsd?: number | null;
  /** Defaults to 'total' when a budget is set without a period. */
  budgetPeriod?: BudgetPeriod | null;
}

/** Everything about a key that can change without rotating it. `null` means "not set". */
export interface KeySettings {
  enabled: boolean;
  expiresAt: Date | null;
  /** Glob patterns of models the key may use; null allows every model. */
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
  budgetTokens: number | null;
  budgetUsd: number | null;
  budgetPeriod: BudgetPeriod | null;
  botDesc: string | null;
  personaMode: PersonaMode | null;
  defaults: KeyDefaults | null;
  maxTokensCeiling: number | null;
  allowOrigin: string[] | null;
  /** Endpoint grants ("POST /v1/fine_tuning/jobs") beyond the defaults, at the owner's risk; null grants none. */
  endpoints: string[] | null;
  /** Conversations of /api/chat (issue 16): on/off, history tokens, turns, seconds kept; null takes the owner's setting. */
  memory: boolean | null;
  memoryMaxTokens: number | null;
  memoryMaxTurns: number | null;
  memoryTtl: number | null;
  /** Seconds an answer stays in the response cache (0 = caching off for the key, whatever its requests ask); null takes the owner's `cache_ttl`. */
  cacheTtl: number | null;
  /** Keys with the same group read and write each other's cached answers; null keeps the key's entries its own. */
  cacheGroup: string | null;
  metadata: Record<string, unknown> | null;
}
