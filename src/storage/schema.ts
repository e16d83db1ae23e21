import type { Generated } from 'kysely';

/**
 * Column types as both drivers return them. Representation choices, kept portable on purpose:
 * - timestamps are ISO-8601 UTC strings from `Date#toISOString()` (`2025-01-31T12:00:00.000Z`)
 *   in `text` columns: fixed width, so string order is time order and `substr(ts, 1, 10)` is
 *   the UTC day on both SQLite and PostgreSQL (even under a locale collation: the punctuation
 *   sits at the same positions in every value, so only the digits decide);
 * - booleans are integers 0/1 (SQLite has no boolean type);
 * - JSON values are `text` holding `JSON.stringify` output (parsed in the repositories);
 * - `bigint` columns come back as numbers: `database.ts` installs an int8 parser on the pg pool.
 */
export interface AppKeysTable {
  id: string;
  name: string;
  key_hash: string;
  key_prefix: string;
  source: string;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  enabled: Generated<number>;
  models: string | null;
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
  budget_tokens: number | null;
  budget_usd: number | null;
  budget_period: string | null;
  bot_desc: string | null;
  persona_mode: string | null;
  defaults: string | null;
  max_tokens_ceiling: number | null;
  allow_origin: string | null;
  metadata: string | null;
  /** JSON array of endpoint grants beyond the defaults (issue 10). */
  endpoints: string | null;
  /** Per-key conversation memory (0005): 0/1, tokens, turns, seconds; null takes the owner's setting. */
  memory: number | null;
  memory_max_tokens: number | null;
  memory_max_turns: number | null;
  memory_ttl: number | null;
  /** Response cache (0006): seconds answers are kept (0 = off), and the group of keys sharing them; null takes the owner's setting / the key's own. */
  cache_ttl: number | null;
  cache_group: string | null;
}

export interface UsageRecordsTable {
  id: Generated<number>;
  ts: string;
  request_id: string;
  key_id: string | null;
  key_name: string | null;
  route: string;
  model: string | null;
  upstream: string | null;
  status: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  cost_usd: number | null;
  latency_ms: number;
  ttfb_ms: number | null;
  aborted: number;
  usage_source: string;
  error_code: string | null;
  /** The /api/chat conversation the request belonged to (0005). */
  conversation_id: string | null;
}

/**
 * Usage summed per period and (key, model, upstream): what reports, budget baselines
 * and charts read for whole days and hours (0004). Kept forever; raw rows go after
 * `usage_retention` days.
 */
export interface UsageRollupColumns {
  key_id: string | null;
  key_name: string | null;
  model: string | null;
  upstream: string | null;
  requests: number;
  /** Records with status >= 400 or an error code. */
  errors: number;
  /** Records refused before the upstream (REFUSED_BEFORE_UPSTREAM), which budget baselines leave out. */
  refused: number;
  /** Total tokens of those refused records. */
  refused_tokens: number;
  /** Known cost of those refused records (unknown counts as 0, as in budget baselines). */
  refused_cost_usd: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  /** Sum of the known costs; null when no record summed here had one. */
  cost_usd: number | null;
}

export interface UsageHourlyTable extends UsageRollupColumns {
  /** Start of the UTC hour, in the `ts` format: `2025-01-31T12:00:00.000Z`. */
  hour: string;
}

export interface UsageDailyTable extends UsageRollupColumns {
  /** Start of the UTC day, in the `ts` format: `2025-01-31T00:00:00.000Z`. */
  day: string;
}

/** Who created an object through the gateway: only that key may use it (SECURITY.md, "Object ownership"). */
export interface OwnedObjectsTable {
  id: string;
  kind: string;
  key_id: string;
  upstream: string;
  upstream_key: string | null;
  created_at: string;
  /** 1 for a background response whose usage is recorded when first seen finished (0003). */
  usage_pending: Generated<number>;
  /** The model that usage is priced with. */
  usage_model: string | null;
  /** When that usage was recorded; null while it is still to come. */
  usage_recorded_at: string | null;
}

/** One conversation of /api/chat, per key (0005). Times are ISO strings like `ts`. */
export interface ConversationsTable {
  key_id: string;
  conversation_id: string;
  created_at: string;
  last_at: string;
  expires_at: string;
}

/** One turn (prompt and answer) of a conversation, numbered by `seq` within it (0005). */
export interface ConversationTurnsTable {
  key_id: string;
  conversation_id: string;
  seq: number;
  prompt: string;
  answer: string;
  asked_at: string;
  answered_at: string;
}

export interface Schema {
  app_keys: AppKeysTable;
  usage_records: UsageRecordsTable;
  usage_hourly: UsageHourlyTable;
  usage_daily: UsageDailyTable;
  owned_objects: OwnedObjectsTable;
  conversations: ConversationsTable;
  conversation_turns: ConversationTurnsTable;
}
