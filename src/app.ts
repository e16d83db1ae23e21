import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Authenticator } from './auth/authenticator.js';
import type { Config } from './config/index.js';
import { GatewayError, sendError, toGatewayError } from './errors/index.js';
import { answerPreflight, applyCors, originPolicy } from './http/cors.js';
import { newRequestContext } from './http/request-context.js';
import { requestIdFor } from './http/request-id.js';
import { logRequest } from './http/request-log.js';
import type { Logger } from './observability/logger.js';
import { apiChatRoutes } from './routes/api-chat.js';
import { healthRoutes } from './routes/health.js';
import { v1Routes } from './routes/v1.js';
import { LogMeter } from './metering/log-meter.js';
import { Upstream } from './upstream/upstream.js';

export interface AppDeps {
  logger: Logger;
}

/** The whole gateway as a Fastify instance, not listening yet (tests and main both start it). */
export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    // pino's Logger is a FastifyBaseLogger with extra fields; Fastify's generics would otherwise leak it everywhere.
    loggerInstance: deps.logger as FastifyBaseLogger,
    disableRequestLogging: true,
    genReqId: requestIdFor,
    bodyLimit: config.server.bodyLimit,
    return503OnClosing: true,
  });

  const cors = originPolicy(config.allowOrigin);
  const auth = new Authenticator(config.accessTokens);
  const upstream = new Upstream({
    name: 'default',
    baseUrl: config.upstream.baseUrl,
    apiKeys: config.upstream.apiKeys,
    proxy: config.upstream.proxy,
    connectTimeoutMs: config.upstream.connectTimeoutMs,
  });
  app.addHook('onClose', async () => upstream.close());

  // The root scope speaks JSON only (/api/chat); /v1 installs its own raw parsers.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('ctx', null as never);
  app.addHook('onRequest', (request, reply, done) => {
    request.ctx = newRequestContext(performance.now());
    reply.header('x-request-id', request.id);
    if (request.method === 'OPTIONS' && request.headers.origin !== undefined) {
      answerPreflight(request, reply, cors);
      return;
    }
    applyCors(request, reply, cors);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    logRequest(request, reply.statusCode);
    done();
  });

  app.setErrorHandler((error, request, reply) => {
    const gatewayError = toGatewayError(error);
    if (gatewayError.code === 'internal_error') request.log.error({ err: error }, 'unhandled error');
    return sendError(request, reply, gatewayError);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(request, reply, new GatewayError('not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`));
  });

  healthRoutes(app);
  apiChatRoutes(app, { config, auth, upstream });
  v1Routes(app, { config, auth, upstream, meter: new LogMeter(deps.logger) });
  await app.ready();
  return app;
}
