import { GlobSet } from '../domain/glob.js';
import type { KeyDefaults, KeyLimits, PersonaMode } from '../domain/key-settings.js';
import type { AppKeyRow } from '../storage/keys-repository.js';
import { EndpointGrants } from './endpoint-grants.js';

/** An app key as the request path needs it: everything precomputed, nothing to parse per request. */
export interface AppKey {
  readonly id: string;
  readonly name: string;
  readonly enabled: boolean;
  /** ms since epoch; undefined = never expires. */
  readonly expiresAt: number | undefined;
  /** undefined = every model allowed. */
  readonly models: GlobSet | undefined;
  readonly modelPatterns: readonly string[] | undefined;
  readonly limits: KeyLimits;
  /** True when any limit or budget is set: only then are tokens estimated before the call. */
  readonly limited: boolean;
  readonly needsTokenEstimate: boolean;
  readonly persona: { readonly text: string; readonly mode: PersonaMode } | undefined;
  readonly defaults: KeyDefaults | undefined;
  readonly maxTokensCeiling: number | undefined;
  readonly allowOrigin: ReadonlySet<string> | undefined;
  /** Endpoints granted beyond the defaults, at the owner's risk; undefined = none. */
  readonly endpoints: EndpointGrants | undefined;
  /** The key's own memory settings for /api/chat conversations; undefined where the owner's apply. */
  readonly memory: KeyMemory;
  /** Seconds answers are cached (0 = off for the key); undefined takes the owner's cache_ttl. */
  readonly cacheTtl: number | undefined;
  /** The owner's group of keys sharing cached answers; undefined = the key's own. */
  readonly cacheGroup: string | undefined;
}

/** A key's memory settings as set on it (config.json, CLI, admin API); undefined takes the owner's. */
export interface KeyMemory {
  readonly enabled: boolean | undefined;
  readonly maxTokens: number | undefined;
  readonly maxTurns: number | undefined;
  readonly ttlSeconds: number | undefined;
}

export function toAppKey(row: AppKeyRow): AppKey {
  const limits: KeyLimits = { rpm: row.rpm, tpm: row.tpm, rpd: row.rpd, budgetTokens: row.budgetTokens, budgetUsd: row.budgetUsd, budgetPeriod: row.budgetPeriod };
  return Object.freeze({
    id: row.id,
    name: row.name,
    enabled: row.enabled,
    expiresAt: row.expiresAt ? row.expiresAt.getTime() : undefined,
    // An empty list allows no model (the CLI shows it as "none"); only null (not set) allows every model.
    models: row.models !== null ? new GlobSet(row.models) : undefined,
    modelPatterns: row.models ?? undefined,
    limits,
    limited: [row.rpm, row.tpm, row.rpd, row.budgetTokens, row.budgetUsd].some((value) => value !== null),
    needsTokenEstimate: row.tpm !== null || row.budgetTokens !== null || row.budgetUsd !== null,
    persona: row.botDesc !== null || row.personaMode !== null ? { text: row.botDesc ?? '', mode: row.personaMode ?? 'prepend' } : undefined,
    defaults: row.defaults ?? undefined,
    maxTokensCeiling: row.maxTokensCeiling ?? undefined,
    allowOrigin: row.allowOrigin ? new Set(row.allowOrigin) : undefined,
    endpoints: EndpointGrants.from(row.endpoints),
    cacheTtl: row.cacheTtl ?? undefined,
    cacheGroup: row.cacheGroup ?? undefined,
    memory: Object.freeze({ enabled: row.memory ?? undefined, maxTokens: row.memoryMaxTokens ?? undefined, maxTurns: row.memoryMaxTurns ?? undefined, ttlSeconds: row.memoryTtl ?? undefined }),
  });
}
