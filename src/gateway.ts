import type { FastifyInstance } from 'fastify';
import { baseServer, buildApp } from './app.js';
import { Authenticator } from './auth/authenticator.js';
import { configKeyEntries } from './auth/key-attributes.js';
import { KeyStore } from './auth/key-store.js';
import { upstreamsFromConfig, type Config } from './config/index.js';
import { originPolicy } from './http/cors.js';
import { LimitTracker } from './limits/index.js';
import { requestFinisher } from './metering/finish-request.js';
import { PriceTable } from './metering/pricing.js';
import { StorageHealth } from './metering/storage-health.js';
import { UsageWriter } from './metering/usage-writer.js';
import type { Logger } from './observability/logger.js';
import { Admission } from './policy/admission.js';
import { adminRoutes } from './routes/admin.js';
import { openDatabase, type Database } from './storage/database.js';
import { KeysRepository } from './storage/keys-repository.js';
import { UsageRepository } from './storage/usage-repository.js';
import { ModelCatalog } from './upstream/model-catalog.js';
import { UpstreamPool } from './upstream/pool.js';

/** Errors raised before a request is admitted: such requests never reached an upstream and use no quota. */
const REFUSED_BEFORE_UPSTREAM = ['missing_api_key', 'invalid_api_key', 'invalid_json', 'invalid_content_type', 'invalid_request', 'origin_not_allowed', 'model_not_allowed', 'rate_limit_exceeded', 'budget_exceeded', 'storage_unavailable', 'body_too_large', 'not_found', 'model_not_found', 'shutting_down'];

/** How often each instance checks the database for keys changed by the CLI or another instance. */
const KEY_REFRESH_MS = 2000;

export interface Gateway {
  app: FastifyInstance;
  /** The admin API, on its own listener; undefined when admin_token is not set. */
  admin: FastifyInstance | undefined;
  database: Database;
  writer: UsageWriter;
  keyStore: KeyStore;
  auth: Authenticator;
  upstreams: UpstreamPool;
  health: StorageHealth;
  close(): Promise<void>;
}

/**
 * Opens the database (migrating it), syncs the keys declared in config.json, and builds the
 * public app and the admin app around one set of shared parts. Nothing listens yet.
 */
export async function createGateway(config: Config, logger: Logger): Promise<Gateway> {
  const database = await openDatabase(config.databaseUrl);
  try {
    const keys = new KeysRepository(database);
    const usage = new UsageRepository(database);
    await keys.upsertFromConfig(configKeyEntries(config.keys));
    const health = new StorageHealth();
    const keyStore = new KeyStore(keys, {
      refreshMs: KEY_REFRESH_MS,
      logger,
      onStorageError: (error) => {
        if (health.markDown(error)) logger.error({ err: (error as Error).message }, 'key database read failed; requests fail closed until it recovers');
      },
    });
    await keyStore.load();
    keyStore.start();
    const prices = new PriceTable(config.prices);
    const writer = new UsageWriter(usage, keys, health, { flushIntervalMs: config.usageFlushIntervalMs, logger, ping: () => database.ping() });
    const limits = new LimitTracker({ loadUsage: (keyId, since) => usage.totalsSince(keyId, since, REFUSED_BEFORE_UPSTREAM) });
    const admission = new Admission(limits, health, config.failOpen);
    const auth = new Authenticator(config.accessTokens, keyStore);
    const upstreams = new UpstreamPool(upstreamsFromConfig(config), config.pool, { logger, timeouts: config.upstream });
    const models = new ModelCatalog(upstreams);
    const finish = requestFinisher(writer, prices);
    const app = await buildApp(config, { logger, auth, admission, upstreams, models, prices, finish, cors: originPolicy(config.allowOrigin, keyStore.origins) });

    let admin: FastifyInstance | undefined;
    if (config.admin.token !== '') {
      admin = baseServer(logger, 1024 * 1024);
      adminRoutes(admin, {
        token: config.admin.token,
        keys,
        usage,
        limits,
        flushUsage: () => writer.flush(),
        keysChanged: () => keyStore.load(),
        status: () => ({ storage: { healthy: health.healthy, reason: health.reason ?? null, pending_usage_records: writer.pending }, keys: keyStore.size, upstreams: upstreams.state() }),
      });
      await admin.ready();
    }

    return {
      app,
      admin,
      database,
      writer,
      keyStore,
      auth,
      upstreams,
      health,
      close: async () => {
        await app.close();
        await admin?.close();
        keyStore.stop();
        await writer.close();
        await upstreams.close();
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
