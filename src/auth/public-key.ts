import type { PublicKey } from '../admin/console-types.js';
import type { AppKeyRow } from '../storage/keys-repository.js';

/** What the CLI and the admin API show of a key (declared with the admin API's other answers). */
export type { PublicKey };

/** An allowlist, field by field: the hash never leaves the repository. */
export function publicKey(row: AppKeyRow): PublicKey {
  return {
    name: row.name,
    id: row.id,
    prefix: row.keyPrefix,
    source: row.source,
    enabled: row.enabled,
    expires_at: row.expiresAt?.toISOString() ?? null,
    models: row.models,
    rpm: row.rpm,
    tpm: row.tpm,
    rpd: row.rpd,
    budget_tokens: row.budgetTokens,
    budget_usd: row.budgetUsd,
    budget_period: row.budgetPeriod,
    bot_desc: row.botDesc,
    persona_mode: row.personaMode,
    defaults: row.defaults,
    max_tokens_ceiling: row.maxTokensCeiling,
    allow_origin: row.allowOrigin,
    endpoints: row.endpoints,
    metadata: row.metadata,
    memory: row.memory,
    memory_max_tokens: row.memoryMaxTokens,
    memory_max_turns: row.memoryMaxTurns,
    memory_ttl: row.memoryTtl,
    cache_ttl: row.cacheTtl,
    cache_group: row.cacheGroup,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
  };
}

