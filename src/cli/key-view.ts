import type { KeyDefaults } from '../domain/key-settings.js';
import type { AppKeyRow } from '../storage/keys-repository.js';
import { publicKey, type PublicKey } from '../auth/public-key.js';

export { publicKey, type PublicKey };
import { formatTime, renderPairs, renderTable, truncate } from './table.js';

const NONE = '—';
const LIST_CELL_MAX = 40;

function formatUsd(value: number): string {
  return `$${value.toFixed(2)}`;
}

function describeModels(models: string[] | null): string {
  if (models === null) return 'all';
  return models.length === 0 ? 'none' : models.join(',');
}

function describeLimits(row: AppKeyRow): string {
  const parts = [
    row.rpm === null ? undefined : `${row.rpm} rpm`,
    row.tpm === null ? undefined : `${row.tpm} tpm`,
    row.rpd === null ? undefined : `${row.rpd} rpd`,
  ].filter((part) => part !== undefined);
  return parts.length === 0 ? NONE : parts.join(', ');
}

function describeBudget(row: AppKeyRow): string {
  const parts = [
    row.budgetUsd === null ? undefined : formatUsd(row.budgetUsd),
    row.budgetTokens === null ? undefined : `${row.budgetTokens} tokens`,
  ].filter((part) => part !== undefined);
  if (parts.length === 0) return NONE;
  return row.budgetPeriod === null ? parts.join(' + ') : `${parts.join(' + ')} per ${row.budgetPeriod}`;
}

function describeState(row: AppKeyRow, now: Date): string {
  if (!row.enabled) return 'no';
  return row.expiresAt !== null && row.expiresAt <= now ? 'expired' : 'yes';
}

export function renderKeyList(rows: readonly AppKeyRow[], now: Date): string {
  if (rows.length === 0) return 'No app keys yet. Create one with: openai-api keys create NAME\n';
  return renderTable(
    [
      { header: 'NAME' },
      { header: 'PREFIX' },
      { header: 'SOURCE' },
      { header: 'ENABLED' },
      { header: 'MODELS' },
      { header: 'LIMITS' },
      { header: 'BUDGET' },
      { header: 'EXPIRES' },
      { header: 'LAST USED' },
    ],
    rows.map((row) => [
      row.name,
      row.keyPrefix,
      row.source,
      describeState(row, now),
      truncate(describeModels(row.models), LIST_CELL_MAX),
      describeLimits(row),
      describeBudget(row),
      formatTime(row.expiresAt, 'never'),
      formatTime(row.lastUsedAt, 'never'),
    ]),
  );
}

function describeDefaults(defaults: KeyDefaults | null): string {
  if (defaults === null) return NONE;
  const parts = Object.entries(defaults).map(([name, value]) => `${name}=${String(value)}`);
  return parts.length === 0 ? NONE : parts.join(', ');
}

/** Every attribute of one key, unset ones as "—". */
export function renderKeyDetails(row: AppKeyRow, now: Date): string {
  const orNone = (value: string | number | null): string => (value === null ? NONE : String(value));
  return renderPairs([
    ['name', row.name],
    ['id', row.id],
    ['prefix', row.keyPrefix],
    ['source', row.source],
    ['enabled', describeState(row, now)],
    ['expires', formatTime(row.expiresAt, 'never')],
    ['models', describeModels(row.models)],
    ['rpm', orNone(row.rpm)],
    ['tpm', orNone(row.tpm)],
    ['rpd', orNone(row.rpd)],
    ['budget', describeBudget(row)],
    ['bot_desc', row.botDesc === null ? NONE : JSON.stringify(row.botDesc)],
    ['persona_mode', orNone(row.personaMode)],
    ['defaults', describeDefaults(row.defaults)],
    ['max_tokens_ceiling', orNone(row.maxTokensCeiling)],
    ['allow_origin', row.allowOrigin === null ? NONE : row.allowOrigin.join(',')],
    ['endpoints', row.endpoints === null || row.endpoints.length === 0 ? NONE : row.endpoints.join(', ')],
    ['metadata', row.metadata === null ? NONE : JSON.stringify(row.metadata)],
    ['memory', describeMemory(row)],
    ['cache', describeCache(row)],
    ['created', formatTime(row.createdAt, NONE)],
    ['updated', formatTime(row.updatedAt, NONE)],
    ['last used', formatTime(row.lastUsedAt, 'never')],
  ]);
}

/** A key's response cache settings; an unset TTL follows the gateway's cache_ttl. */
function describeCache(row: AppKeyRow): string {
  const ttl = row.cacheTtl === null ? '(gateway default)' : row.cacheTtl === 0 ? 'off' : `ttl ${row.cacheTtl}s`;
  return row.cacheGroup === null ? ttl : `${ttl}, group ${row.cacheGroup}`;
}

/** A key's own conversation memory settings; unset ones follow the gateway's (config.json). */
function describeMemory(row: AppKeyRow): string {
  const parts: string[] = [];
  if (row.memory !== null) parts.push(row.memory ? 'on' : 'off');
  if (row.memoryMaxTokens !== null) parts.push(`max_tokens ${row.memoryMaxTokens}`);
  if (row.memoryMaxTurns !== null) parts.push(`max_turns ${row.memoryMaxTurns}`);
  if (row.memoryTtl !== null) parts.push(`ttl ${row.memoryTtl}s`);
  return parts.length === 0 ? '(gateway default)' : parts.join(', ');
}
