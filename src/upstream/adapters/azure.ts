import type { UpstreamConfig } from '../../config/upstream-entry.js';
import type { ProviderAdapter, SocketEndpoint } from './adapter.js';

/**
 * The operations Azure OpenAI serves per deployment (reference §9, openai-node `src/azure.ts`):
 * `{base_url}/openai/deployments/{deployment}/{op}?api-version=…`.
 */
const DEPLOYMENT_OPERATIONS = new Set([
  '/chat/completions',
  '/completions',
  '/embeddings',
  '/images/generations',
  '/images/edits',
  '/audio/transcriptions',
  '/audio/translations',
  '/audio/speech',
]);

/**
 * Azure OpenAI ("classic" data plane). The deployment chooses the model, so a model without an
 * entry in `deployments` is not served here; every other path goes to `{base_url}/openai{path}`.
 * `api-version` is added to the caller's query (replacing one the caller sent), and the key
 * travels as `api-key`, not Authorization.
 */
export class AzureAdapter implements ProviderAdapter {
  private readonly deployments: ReadonlyMap<string, string>;
  private readonly apiVersion: string;
  private readonly basePath: string;

  constructor(
    private readonly config: UpstreamConfig,
    basePath: string,
  ) {
    this.deployments = new Map(Object.entries(config.deployments).map(([model, deployment]) => [model, encodeURIComponent(deployment)]));
    this.apiVersion = config.apiVersion ?? '';
    // base_url is the resource endpoint; accept it with the "/openai" suffix too.
    this.basePath = basePath.replace(/\/openai$/, '');
  }

  servesModel(model: string): boolean {
    return this.deployments.has(model);
  }

  servesWithoutModel(pathname: string): boolean {
    return !DEPLOYMENT_OPERATIONS.has(pathname);
  }

  target(path: string, model: string | undefined): string {
    const queryAt = path.indexOf('?');
    const pathname = queryAt === -1 ? path : path.slice(0, queryAt);
    const query = new URLSearchParams(queryAt === -1 ? '' : path.slice(queryAt + 1));
    query.set('api-version', this.apiVersion);
    const deployment = model === undefined ? undefined : this.deployments.get(model);
    const route = DEPLOYMENT_OPERATIONS.has(pathname) && deployment !== undefined ? `/openai/deployments/${deployment}${pathname}` : `/openai${pathname}`;
    return `${this.basePath}${route}?${query.toString()}`;
  }

  requestHeaders(caller: Readonly<Record<string, string>>, key: Readonly<Record<string, string>>): Record<string, string> {
    return { ...caller, ...key };
  }

  keyHeaders(key: string | undefined): Record<string, string> {
    return key === undefined ? { ...this.config.headers } : { ...this.config.headers, 'api-key': key };
  }

  /**
   * Realtime per deployment: `{base_url}/openai/realtime?api-version=…&deployment=…`
   * (learn.microsoft.com, "Use the GPT Realtime API via WebSockets"). Azure's classic data plane
   * has no Responses WebSocket mode, so that upgrade is refused and clients fall back to HTTP.
   */
  socketTarget(socket: SocketEndpoint, query: URLSearchParams, model: string | undefined): string | undefined {
    if (!this.config.websockets || socket !== '/realtime') return undefined;
    const deployment = model === undefined ? undefined : this.config.deployments[model];
    if (deployment === undefined) return undefined;
    const search = new URLSearchParams(query);
    search.delete('model');
    search.set('api-version', this.apiVersion);
    search.set('deployment', deployment);
    return `${this.basePath}/openai/realtime?${search.toString()}`;
  }
}
