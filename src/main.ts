import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config, type LoadConfigOptions } from './config/index.js';
import { ConfigError } from './config/load-config.js';
import { assertSafeToListen } from './config/safety.js';
import { createGateway, type Gateway } from './gateway.js';
import { createLogger, type Logger } from './observability/logger.js';
import { StorageError } from './storage/storage-error.js';

export interface RunningGateway {
  gateway: Gateway;
  config: Config;
  logger: Logger;
  /** The address actually bound (port 0 picks a free one). */
  url: string;
  adminUrl: string | undefined;
  /** Re-reads config.json and the environment (SIGHUP); a bad new config is logged and refused. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Load config → open storage → build → listen. Throws ConfigError (one line) when the
 * configuration or the database is unusable.
 */
export async function startGateway(options: LoadConfigOptions = {}): Promise<RunningGateway> {
  const config = loadConfig(options);
  const logger = createLogger(config.log.level);
  let gateway: Gateway;
  try {
    gateway = await createGateway(config, logger, () => loadConfig(options));
  } catch (error) {
    if (error instanceof StorageError) throw new ConfigError(`storage error: ${error.message}`);
    throw error;
  }
  try {
    assertSafeToListen(config, gateway.keyStore.size);
    const url = await listenQuietly(gateway.app, config.server.host, config.server.port);
    const adminUrl = gateway.admin ? await listenQuietly(gateway.admin, config.admin.host, config.admin.port) : undefined;
    logger.info(
      {
        url,
        admin_url: adminUrl ?? null,
        upstream: config.upstream.baseUrl,
        upstream_keys: config.upstream.apiKeys.length,
        access_tokens: config.accessTokens.length,
        app_keys: gateway.keyStore.size,
        config_file: config.configFile ?? null,
      },
      'openai-api listening',
    );
    if (config.upstream.apiKeys.length === 0) logger.warn('no api_key is configured: requests go upstream without a key');
    return {
      gateway,
      config,
      logger,
      url,
      adminUrl,
      reload: async () => {
        try {
          const result = await gateway.reload(loadConfig(options));
          if (!result.ok) logger.error({ reason: result.error }, 'reload refused; the previous configuration keeps serving');
        } catch (error) {
          logger.error({ reason: (error as Error).message }, 'reload refused; the previous configuration keeps serving');
        }
      },
      close: async () => {
        await gateway.close();
        await new Promise<void>((resolve) => logger.flush(() => resolve()));
      },
    };
  } catch (error) {
    await gateway.close();
    throw error;
  }
}

/**
 * listen() without Fastify's own "Server listening at …" info line beside our "openai-api
 * listening" one. Fastify logs it through `app.log` and has no switch for it (listenTextResolver
 * only rewords it), so listen() gets a child of that logger that drops info, while warnings and
 * errors still pass. Request loggers derive from Fastify's internal logger, not from `app.log`,
 * so a request arriving meanwhile logs as usual.
 */
async function listenQuietly(app: FastifyInstance, host: string, port: number): Promise<string> {
  const log = app.log;
  app.log = log.child({}, { level: ['trace', 'debug', 'info'].includes(log.level) ? 'warn' : log.level });
  try {
    return await app.listen({ host, port });
  } finally {
    app.log = log;
  }
}

/** Stops accepting on SIGTERM/SIGINT, lets in-flight requests finish, flushes usage, then exits 0. */
export function closeOnSignals(running: RunningGateway): void {
  let closing = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    running.logger.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        running.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.on('SIGHUP', () => {
    if (!closing) void running.reload();
  });
}
