import type { ConfiguredKey } from '../config/config.js';
import type { KeyAttributes } from '../config/key-entry.js';
import type { KeySettings } from '../domain/key-settings.js';
import type { ConfigKeyEntry } from '../storage/keys-repository.js';
import { hashKeySecret, keyPrefix } from './key-secret.js';

/**
 * Key attributes as users write them (config.json, CLI flags, admin API JSON: snake_case) →
 * the repository's settings. Only attributes present are returned, so the result works as a patch.
 */
export function attributesToSettings(attributes: KeyAttributes): Partial<KeySettings> {
  const settings: Partial<KeySettings> = {};
  if (attributes.enabled !== undefined) settings.enabled = attributes.enabled;
  if (attributes.expires_at !== undefined) settings.expiresAt = new Date(attributes.expires_at);
  if (attributes.models !== undefined) settings.models = attributes.models;
  if (attributes.rpm !== undefined) settings.rpm = attributes.rpm;
  if (attributes.tpm !== undefined) settings.tpm = attributes.tpm;
  if (attributes.rpd !== undefined) settings.rpd = attributes.rpd;
  if (attributes.budget_tokens !== undefined) settings.budgetTokens = attributes.budget_tokens;
  if (attributes.budget_usd !== undefined) settings.budgetUsd = attributes.budget_usd;
  if (attributes.budget_period !== undefined) settings.budgetPeriod = attributes.budget_period;
  if (attributes.bot_desc !== undefined) settings.botDesc = attributes.bot_desc;
  if (attributes.persona_mode !== undefined) settings.personaMode = attributes.persona_mode;
  if (attributes.defaults !== undefined) settings.defaults = attributes.defaults;
  if (attributes.max_tokens_ceiling !== undefined) settings.maxTokensCeiling = attributes.max_tokens_ceiling;
  if (attributes.allow_origin !== undefined) settings.allowOrigin = attributes.allow_origin;
  if (attributes.endpoints !== undefined) settings.endpoints = attributes.endpoints;
  if (attributes.metadata !== undefined) settings.metadata = attributes.metadata;
  if (attributes.memory !== undefined) settings.memory = attributes.memory;
  if (attributes.memory_max_tokens !== undefined) settings.memoryMaxTokens = attributes.memory_max_tokens;
  if (attributes.memory_max_turns !== undefined) settings.memoryMaxTurns = attributes.memory_max_turns;
  if (attributes.memory_ttl !== undefined) settings.memoryTtl = attributes.memory_ttl;
  if (attributes.cache_ttl !== undefined) settings.cacheTtl = attributes.cache_ttl;
  if (attributes.cache_group !== undefined) settings.cacheGroup = attributes.cache_group;
  return settings;
}

/** The keys of config.json as the repository stores them: hash and visible prefix, never the secret. */
export function configKeyEntries(keys: readonly ConfiguredKey[]): ConfigKeyEntry[] {
  return keys.map(({ name, secret, ...attributes }) => ({
    ...attributesToSettings(attributes),
    name,
    keyHash: hashKeySecret(secret),
    keyPrefix: keyPrefix(secret),
  }));
}
