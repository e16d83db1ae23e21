import type { FastifyInstance } from 'fastify';
import { AccessTokens } from '../auth/access-tokens.js';
import { presentedKey } from '../auth/bearer.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { DEFAULT_PRICES } from '../metering/pricing.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { knownModels } from '../observability/model-labels.js';
import type { Runtime, RuntimeParts } from '../runtime.js';

export interface MetricsRouteOptions {
  metrics: GatewayMetrics;
  runtime: Runtime;
  /**
   * `admin`: the admin listener, where the admin token or metrics_token is asked for. `public`:
   * the public port, served only while `metrics_public` is set, and then with metrics_token when
   * one is set (never the admin token: it belongs on the admin listener).
   */
  listener: 'admin' | 'public';
}

/** The tokens a scrape may present on a listener; none means the scrape is open (public port without metrics_token). */
function scrapeTokens(config: Config, listener: 'admin' | 'public'): string[] {
  const tokens = listener === 'admin' ? [config.admin.token, config.metrics.token] : [config.metrics.token];
  return tokens.filter((token) => token !== '');
}

/**
 * `GET /metrics`: the Prometheus text exposition (docs/metrics.md). Its settings are read from
 * the configuration of the moment, so a reload applies a new metrics_token or metrics_public.
 */
export function metricsRoutes(app: FastifyInstance, options: MetricsRouteOptions): void {
  const { metrics, runtime, listener } = options;
  let matcher: { config: Config; tokens: AccessTokens | undefined } | undefined;
  const tokensOf = (config: Config): AccessTokens | undefined => {
    if (matcher?.config !== config) {
      const tokens = scrapeTokens(config, listener);
      matcher = { config, tokens: tokens.length === 0 ? undefined : new AccessTokens(tokens) };
    }
    return matcher.tokens;
  };
  // `adminPublic`: the admin listener's own token check (routes/admin.ts) would refuse
  // metrics_token; this route checks both tokens itself.
  app.get('/metrics', { config: { adminPublic: true } }, async (request, reply) => {
    const config = runtime.current.config;
    if (listener === 'public' && !config.metrics.public) throw new GatewayError('not_found', 'No route for GET /metrics.');
    const tokens = tokensOf(config);
    if (tokens !== undefined) {
      const presented = presentedKey(request.headers);
      if (presented === undefined) throw new GatewayError('missing_api_key', 'Missing token: send "Authorization: Bearer <metrics_token or admin_token>".');
      if (tokens.match(presented) < 0) throw new GatewayError('invalid_api_key', 'Invalid metrics token.');
    }
    const text = await metrics.text();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}

/**
 * The model names metrics label by name (others fold into `other`): the price table, the
 * models the upstream config names, the aliases and the default model, and the catalogue's list
 * once GET /v1/models has loaded it. Rebuilt only when a reload or the catalogue changes them;
 * the request path gets the same map back otherwise.
 */
export function knownModelsOf(runtime: Runtime): () => ReadonlyMap<string, string> {
  let parts: RuntimeParts | undefined;
  let listed: unknown;
  let known: ReadonlyMap<string, string> = new Map();
  return () => {
    const current = runtime.current;
    const catalogue = current.models.loaded();
    if (current !== parts || catalogue !== listed) {
      parts = current;
      listed = catalogue;
      const { config } = current;
      known = knownModels([
        current.upstreams.configuredModels(),
        Object.keys(config.prices),
        Object.keys(DEFAULT_PRICES),
        Object.values(config.modelAlias),
        Object.keys(config.modelAlias),
        [config.defaults.model],
        (catalogue ?? []).map((model) => model.id),
      ]);
    }
    return known;
  };
}
