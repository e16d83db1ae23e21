import type { Migration } from 'kysely';
import { initial } from './0001-initial.js';
import { confinement } from './0002-confinement.js';
import { backgroundUsage } from './0003-background-usage.js';
import { usageRollup } from './0004-usage-rollup.js';
import { conversations } from './0005-conversations.js';
import { responseCache } from './0006-response-cache.js';

/**
 * Every migration, keyed by the name recorded in `kysely_migration`. A static map rather than
 * Kysely's FileMigrationProvider so it works unchanged from `dist/` and in bundles.
 * Names sort in apply order; never rename or edit an applied entry, add a new one.
 */
export const migrations: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_initial': initial,
  '0002_confinement': confinement,
  '0003_background_usage': backgroundUsage,
  '0004_usage_rollup': usageRollup,
  '0005_conversations': conversations,
  '0006_response_cache': responseCache,
});
