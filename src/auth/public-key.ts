import type { KeyDefaults } from '../domain/key-settings.js';
import type { AppKeyRow } from '../storage/keys-repository.js';

/** What the CLI and the admin API show of a key, in the snake_case of config.json. */
export interface PublicKey {
  name: string;
  id: string;
  prefix: string;
  source: string;
  enabled: boolean;
  expires_at: string | null;
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
  budget_tokens: number | null;
  budget_usd: number | null;
  budget_period: string | null;
  bot_desc: string | null;
  persona_mode: string | null;
  defaults: KeyDefaults | null;
  max_tokens_ceiling: number | null;
  allow_origin: string[] | null;
  endpoints: string[] | null;
  metadata: Record<string, unknown> | null;
  created_at: string;
  updated_at: string;
  last_used_at: string | null;
}

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
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
  };
}

