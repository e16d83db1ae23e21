import type { KeySettings } from '../domain/key-settings.js';

/**
 * The attributes a change may clear by sending `null` (no limit, no model list, no persona, no
 * expiry…), with the setting each one is stored as. `enabled` is not among them: a key is on or off.
 */
const CLEARABLE = {
  models: 'models',
  rpm: 'rpm',
  tpm: 'tpm',
  rpd: 'rpd',
  budget_tokens: 'budgetTokens',
  budget_usd: 'budgetUsd',
  budget_period: 'budgetPeriod',
  expires_at: 'expiresAt',
  bot_desc: 'botDesc',
  persona_mode: 'personaMode',
  defaults: 'defaults',
  max_tokens_ceiling: 'maxTokensCeiling',
  allow_origin: 'allowOrigin',
  endpoints: 'endpoints',
  metadata: 'metadata',
  memory: 'memory',
  memory_max_tokens: 'memoryMaxTokens',
  memory_max_turns: 'memoryMaxTurns',
  memory_ttl: 'memoryTtl',
  cache_ttl: 'cacheTtl',
  cache_group: 'cacheGroup',
} as const satisfies Record<string, keyof KeySettings>;

/**
 * Splits a PATCH body into the attributes it sets (left for the attribute schema to check) and
 * the settings it clears (`"rpm": null`). Anything that is not a plain object is passed on whole,
 * for the schema to refuse with its usual message.
 */
export function splitClears(body: unknown): { set: unknown; cleared: Partial<KeySettings> } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { set: body, cleared: {} };
  const set: Record<string, unknown> = {};
  const cleared: Record<string, null> = {};
  for (const [name, value] of Object.entries(body)) {
    if (value === null && Object.hasOwn(CLEARABLE, name)) cleared[CLEARABLE[name as keyof typeof CLEARABLE]] = null;
    else set[name] = value;
  }
  return { set, cleared: cleared as Partial<KeySettings> };
}
