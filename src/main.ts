import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { loadConfig, type Config, type LoadConfigOptions } from './config/index.js';
import { assertSafeToListen } from './config/safety.js';
import { createLogger, type Logger } from './observability/logger.js';

export interface RunningGateway {
  app: FastifyInstance;
  config: Config;
  logger: Logger;
  /** The address actually bound (port 0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/** Load config → build app → listen. Throws ConfigError (one line) when the configuration is unusable. */
export async function startGateway(options: LoadConfigOptions = {}): Promise<RunningGateway> {
  const config = loadConfig(options);
  assertSafeToListen(config, config.accessTokens.length > 0);
  const logger = createLogger(config.log.level);
  const app = await buildApp(config, { logger });
  const url = await app.listen({ host: config.server.host, port: config.server.port });
  logger.info(
    {
      url,
      upstream: config.upstream.baseUrl,
      upstream_keys: config.upstream.apiKeys.length,
      access_tokens: config.accessTokens.length,
      config_file: config.configFile ?? null,
    },
    'openai-api listening',
  );
  if (config.upstream.apiKeys.length === 0) logger.warn('no api_key is configured: requests go upstream without a key');
  return {
    app,
    config,
    logger,
    url,
    close: async () => {
      await app.close();
      logger.flush();
    },
  };
}

/** Stops accepting on SIGTERM/SIGINT, lets in-flight requests finish, then exits 0. */
export function closeOnSignals(gateway: RunningGateway): void {
  let closing = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    gateway.logger.info({ signal }, 'shutting down');
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        gateway.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
