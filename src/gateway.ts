import type { FastifyInstance } from 'fastify';
import { baseServer, buildApp } from './app.js';
import { configKeyEntries } from './auth/key-attributes.js';
import { KeyStore } from './auth/key-store.js';
import type { Config } from './config/index.js';
import { decideAuthMode, isLoopbackHost } from './config/safety.js';
import { ActiveStreams } from './http/active-streams.js';
import { FailoverLimitStore, LimitTracker, RedisLimitStore, reservationHoldMs, type LimitStore, type LoadUsage } from './limits/index.js';
import { requestFinisher } from './pipeline/finish.js';
import { StorageHealth } from './metering/storage-health.js';
import { UsageWriter } from './metering/usage-writer.js';
import { UsageRetention } from './metering/usage-retention.js';
import type { Logger } from './observability/logger.js';
import { GatewayMetrics } from './observability/metrics.js';
import { startTracing, TRACING_OFF, type Tracer } from './observability/tracing.js';
import { adminRoutes } from './routes/admin.js';
import { knownModelsOf, metricsRoutes } from './routes/metrics.js';
import { consoleRoutes } from './routes/console.js';
import { ConsoleSessions } from './admin/session.js';
import { RecentRequests, tailRequests } from './pipeline/request-log.js';
import { buildRuntimeParts, type Runtime } from './runtime.js';
import { openDatabase, type Database } from './storage/database.js';
import { openRedis, type SharedRedis } from './storage/redis.js';
import { KeyChangeRelay } from './cluster/key-change-relay.js';
import { newInstanceId } from './cluster/messages.js';
import { SharedKeyHealth } from './cluster/shared-key-health.js';
import { openCacheStore } from './cache/response-cache.js';
import { KeysRepository } from './storage/keys-repository.js';
import { UsageRepository } from './storage/usage-repository.js';
import { ObjectsRepository } from './storage/objects-repository.js';
import { ConversationsRepository } from './storage/conversations-repository.js';
import { Conversations } from './conversations/conversations.js';
import { ConversationSweep } from './conversations/conversation-sweep.js';
import { Ownership } from './ownership/ownership.js';
import { BackgroundUsage } from './ownership/background-usage.js';

/** How often each instance checks the database for keys changed by the CLI or another instance. */
const KEY_REFRESH_MS = 2000;

/** Settings bound at start-up (sockets, database): a reload that changes them warns that a restart is needed. */
const RESTART_ONLY: Array<[string, (config: Config) => unknown]> = [
  ['host / port', (c) => `${c.server.host}:${c.server.port}`],
  ['database_url', (c) => c.databaseUrl],
  ['redis_url / redis_prefix', (c) => `${c.redis.url}|${c.redis.prefix}`],
  ['admin_token / admin_host / admin_port', (c) => `${c.admin.token !== ''}:${c.admin.host}:${c.admin.port}`],
  ['metrics_token (alone, it starts the admin listener)', (c) => c.admin.token === '' && c.metrics.token !== ''],
  ['body_limit', (c) => c.server.bodyLimit],
  ['cache_max_bytes', (c) => c.cache.maxBytes],
  ['usage_flush_interval', (c) => c.usageFlushIntervalMs],
  ['OTEL_* (tracing)', (c) => JSON.stringify(c.tracing)],
];

export interface ReloadResult {
  ok: boolean;
  error?: string;
  /** Changed settings that only take effect after a restart. */
  needsRestart: string[];
}

export interface Gateway {
  app: FastifyInstance;
  /** The admin API, on its own listener; undefined when admin_token is not set. */
  admin: FastifyInstance | undefined;
  runtime: Runtime;
  database: Database;
  /** The Redis every instance shares; undefined without `redis_url`. */
  redis: SharedRedis | undefined;
  writer: UsageWriter;
  keyStore: KeyStore;
  health: StorageHealth;
  streams: ActiveStreams;
  /** Applies a new configuration (already loaded and validated) without dropping connections. */
  reload(config: Config): Promise<ReloadResult>;
  /**
   * Stops accepting, lets in-flight requests and streams finish for up to `drainMs`, ends the
   * rest with an error event, writes the queued usage records and closes everything.
   */
  close(drainMs?: number): Promise<void>;
}

/**
 * Opens the database (migrating it), syncs the keys declared in config.json, and builds the
 * public app and the admin app around one set of shared parts. Nothing listens yet.
 */
export async function createGateway(config: Config, logger: Logger, reloadConfig?: () => Config): Promise<Gateway> {
  const database = await openDatabase(config.databaseUrl);
  let tracing: Tracer = TRACING_OFF;
  let redis: SharedRedis | undefined;
  try {
    if (config.redis.url !== '') {
      redis = openRedis(config.redis.url, { logger, prefix: config.redis.prefix });
      // Redis down at start is an outage like any other (fail_open decides), not a reason not to start.
      if (!(await redis.ready())) logger.warn('redis not reachable at start; carrying on and reconnecting in the background');
    }
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
      // Never called by the first load (no key had limits before it), so `limits`, made below, is there.
      onLimitsChanged: (id) => limits.forget(id),
    });
    await keyStore.load();
    keyStore.start();
    // Read when Prometheus scrapes (and the model names per request): all built below, before anything listens.
    const metrics: GatewayMetrics = new GatewayMetrics({
      knownModels: () => knownModels(),
      upstreams: () => runtime.current.upstreams.state(),
      activeRelays: () => streams.size,
      usageQueueDepth: (): number => writer.pending,
      databaseUp: () => health.healthy,
      ...(redis === undefined ? {} : { redisUp: () => redis!.healthy }),
      appKeys: () => keyStore.size,
    });
    const writer = new UsageWriter(usage, keys, health, { flushIntervalMs: config.usageFlushIntervalMs, logger, ping: () => database.ping(), observer: metrics });
    const loadUsage: LoadUsage = (keyId, since) => usage.totalsSince(keyId, since, { excludeRefused: true });
    const localLimits = new LimitTracker({ loadUsage });
    // With Redis, limits and budgets are shared by every instance; without it (or, with fail_open, while it is away) they are this instance's own.
    const limits: LimitStore =
      redis === undefined
        ? localLimits
        : new FailoverLimitStore({
            shared: new RedisLimitStore({ client: redis.client, loadUsage, holdMs: reservationHoldMs(config.upstream), onError: (error) => logger.debug({ err: (error as Error).message }, 'shared limits: a redis write failed; kept to add when it answers') }),
            local: localLimits,
            health: redis,
            failOpen: () => runtime.current.config.failOpen,
            logger,
          });
    // The response cache's entries outlive reloads; with Redis they are every instance's.
    const cacheStore = openCacheStore(config.cache, redis);
    // With Redis, app key changes and upstream key health reach every instance at once.
    const instanceId = newInstanceId();
    const keyHealth = redis && new SharedKeyHealth(redis, () => runtime.current.upstreams, logger, instanceId);
    const keyChanges = redis && new KeyChangeRelay(redis, keyStore, logger, instanceId);
    const shared = { logger, keyStore, limits, health, cacheStore, onKeyVerdict: keyHealth?.report };
    const runtime: Runtime = { current: buildRuntimeParts(config, shared) };
    if (redis && keyHealth && keyChanges) {
      await keyHealth.restore(runtime.current.upstreams, 'start');
      const subscribed = Promise.all([keyHealth.start(), keyChanges.start()]).catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'redis subscription failed; key changes arrive by the poll'));
      // Redis down at start: the subscriptions complete when it is back; the poll covers until then.
      if (redis.healthy) await subscribed;
    }
    const streams = new ActiveStreams();
    const knownModels = knownModelsOf(runtime);
    if (config.metrics.public && config.metrics.token === '' && !isLoopbackHost(config.server.host)) {
      logger.warn({ host: config.server.host }, 'metrics_public without metrics_token: anyone who can reach the public port can read /metrics (key names, usage); set metrics_token unless the network is private');
    }
    const finish = requestFinisher(writer, () => runtime.current.prices, metrics);
    const ownership = new Ownership(new ObjectsRepository(database), logger);
    const backgroundUsage = new BackgroundUsage({ ownership, meter: writer, limits, keyById: (id) => keyStore.byId(id), prices: () => runtime.current.prices, logger });
    tracing = await startTracing(config.tracing, logger);
    const conversationStore = new ConversationsRepository(database);
    const conversations = new Conversations(conversationStore, logger);
    const app = await buildApp(config, { logger, meter: writer, runtime, finish, streams, ownership, backgroundUsage, tracing, metrics, conversations });
    const recentRequests = new RecentRequests();
    tailRequests(app.server, recentRequests);

    async function reload(next: Config): Promise<ReloadResult> {
      const previous = runtime.current;
      const needsRestart = RESTART_ONLY.filter(([, read]) => read(previous.config) !== read(next)).map(([name]) => name);
      try {
        // Decided before the sync below touches the database (it deletes keys the old config
        // declared): the keys left then are the new config's plus those made by the CLI or admin API.
        // Judged on the address start-up bound (host is restart-only) as well as on the new one.
        const otherKeys = (await keys.list()).filter((row) => row.source !== 'config').length;
        for (const host of new Set([config.server.host, next.server.host])) {
          const decision = decideAuthMode(next, otherKeys, host);
          if (decision.mode === 'refused') return { ok: false, error: decision.reason, needsRestart };
        }
        await keys.upsertFromConfig(configKeyEntries(next.keys));
        await writer.flush();
        // Forgets the limit state of keys whose limits changed (onLimitsChanged).
        await keyStore.load();
        keyChanges?.announce(undefined);
      } catch (error) {
        return { ok: false, error: `keys could not be synced: ${(error as Error).message}`, needsRestart };
      }
      runtime.current = buildRuntimeParts(next, shared);
      await keyHealth?.restore(runtime.current.upstreams, 'reload');
      logger.level = next.log.level;
      // In-flight requests keep the old pool's sockets until they finish; close() waits for them.
      void previous.upstreams.close().catch(() => undefined);
      if (needsRestart.length > 0) logger.warn({ settings: needsRestart }, 'reloaded; these settings take effect after a restart');
      else logger.info('configuration reloaded');
      return { ok: true, needsRestart };
    }

    let admin: FastifyInstance | undefined;
    if (config.admin.token !== '' || config.metrics.token !== '') {
      admin = baseServer(logger, { ...config.server, bodyLimit: 1024 * 1024 });
      metricsRoutes(admin, { metrics, runtime, listener: 'admin' });
    }
    if (admin !== undefined && config.admin.token !== '') {
      const sessions = new ConsoleSessions();
      consoleRoutes(admin, { token: config.admin.token, sessions, trustProxy: () => runtime.current.config.admin.trustProxy });
      adminRoutes(admin, {
        token: config.admin.token,
        sessions,
        recentRequests,
        keys,
        usage,
        limits,
        conversations,
        flushUsage: () => writer.flush(),
        keysChanged: async (id) => {
          await keyStore.load();
          keyChanges?.announce(id);
        },
        reload: reloadConfig ? () => reload(reloadConfig()) : undefined,
        status: () => ({
          storage: { healthy: health.healthy, reason: health.reason ?? null, pending_usage_records: writer.pending },
          keys: keyStore.size,
          active_streams: streams.size,
          upstreams: runtime.current.upstreams.state(),
        }),
      });
    }
    await admin?.ready();

    // Deletes raw usage rows past usage_retention in the background; the rollup keeps their sums.
    const retention = new UsageRetention(usage, { retentionDays: () => runtime.current.config.usageRetentionDays, logger });
    retention.start();
    // Deletes conversations past their memory_ttl (reads already skip them) and those of deleted keys.
    const sweep = new ConversationSweep(conversationStore, { logger });
    sweep.start();

    let closing: Promise<void> | undefined;
    async function close(drainMs = config.drainTimeoutMs): Promise<void> {
      closing ??= (async () => {
        // Each server's preClose hook (app.ts) closes keep-alive sockets as their requests end, so
        // this resolves when the last request in flight ends, not at drain_timeout.
        const closed = Promise.all([app.close(), admin?.close()]);
        let timer: NodeJS.Timeout | undefined;
        const drained = await Promise.race([closed.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), drainMs)))]);
        if (timer) clearTimeout(timer);
        if (!drained) {
          logger.warn({ streams: streams.size }, 'drain timeout: ending the requests still running');
          streams.stopAll();
          // Give the routes a moment to write their error events, then cut what is left.
          await new Promise((resolve) => setTimeout(resolve, 100));
          app.server.closeAllConnections();
          admin?.server.closeAllConnections();
          await closed;
        }
        keyStore.stop();
        await retention.stop();
        await sweep.stop();
        await writer.close();
        await runtime.current.upstreams.close();
        // Every request has ended (and its span with it): export what is still queued.
        await tracing.shutdown();
        await redis?.close();
        await database.close();
      })();
      return closing;
    }

    return { app, admin, runtime, database, redis, writer, keyStore, health, streams, reload, close };
  } catch (error) {
    await tracing.shutdown();
    await redis?.close();
    await database.close();
    throw error;
  }
}
