import { Authenticator } from './auth/authenticator.js';
import type { KeyStore } from './auth/key-store.js';
import type { CacheStore } from './cache/cache-store.js';
import { ResponseCache } from './cache/response-cache.js';
import { upstreamsFromConfig, type Config } from './config/index.js';
import { decideAuthMode } from './config/safety.js';
import { originPolicy, type OriginPolicy } from './http/cors.js';
import type { LimitStore } from './limits/index.js';
import { PriceTable } from './metering/pricing.js';
import type { StorageHealth } from './metering/storage-health.js';
import type { Logger } from './observability/logger.js';
import { Admission } from './policy/admission.js';
import { ModelCatalog } from './upstream/model-catalog.js';
import type { KeyVerdictListener } from './upstream/key-verdict.js';
import { UpstreamPool } from './upstream/pool.js';

/** Everything a request reads that a reload may replace. Each request takes one snapshot at its start. */
export interface RuntimeParts {
  readonly config: Config;
  readonly auth: Authenticator;
  readonly upstreams: UpstreamPool;
  readonly models: ModelCatalog;
  readonly prices: PriceTable;
  readonly admission: Admission;
  readonly cors: OriginPolicy;
  /** The response cache: the shared store with this configuration's TTLs and entry limit. */
  readonly cache: ResponseCache;
}

/** The current parts; a reload swaps `current` in one assignment, so no request sees half of each. */
export interface Runtime {
  current: RuntimeParts;
}

/** What survives a reload: the key cache, the limit counters, storage health. */
export interface SharedParts {
  logger: Logger;
  keyStore: KeyStore;
  limits: LimitStore;
  health: StorageHealth;
  /** The response cache's store (in-process or Redis): its entries outlive reloads. */
  cacheStore: CacheStore;
  /** Told what the pool learns about upstream keys (shared with other instances through Redis). */
  onKeyVerdict?: KeyVerdictListener;
}

export function buildRuntimeParts(config: Config, shared: SharedParts): RuntimeParts {
  // Start-up and reload refuse a config decided 'refused' before it serves; should one get here, fail closed.
  const authMode = decideAuthMode(config, shared.keyStore.size).mode === 'open' ? 'open' : 'keyed';
  const upstreams = new UpstreamPool(upstreamsFromConfig(config), config.pool, { logger: shared.logger, timeouts: config.upstream, onKeyVerdict: shared.onKeyVerdict });
  // One table: the estimates admission checks and the costs metered must agree.
  const prices = new PriceTable(config.prices, config.fallbackPrice);
  return {
    config,
    auth: new Authenticator(config.accessTokens, shared.keyStore, authMode),
    upstreams,
    models: new ModelCatalog(upstreams),
    prices,
    admission: new Admission(shared.limits, shared.health, config.failOpen, prices),
    cors: originPolicy(config.allowOrigin, shared.keyStore.origins),
    cache: new ResponseCache(shared.cacheStore, { defaultTtlMs: config.cache.ttlMs, maxRequestTtlMs: config.cache.maxRequestTtlMs }, config.cache.maxEntryBytes),
  };
}
