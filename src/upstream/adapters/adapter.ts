import type { UpstreamConfig } from '../../config/upstream-entry.js';
import { AnthropicAdapter } from './anthropic.js';
import { AzureAdapter } from './azure.js';
import { OpenAiAdapter } from './openai.js';

/** How one provider type is addressed: which models it can take, where a request goes, how a key is sent. */
export interface ProviderAdapter {
  /** Whether the upstream can serve this model beyond its `models` globs (Azure: only models with a deployment). */
  servesModel(model: string): boolean;
  /** Whether a request without a model can go to this path (below /v1, no query). */
  servesWithoutModel(pathname: string): boolean;
  /** The path from the upstream's origin, query included, for a request path below /v1. */
  target(path: string, model: string | undefined): string;
  /** The headers every request with `key` carries: the entry's extra headers and the credential. */
  keyHeaders(key: string | undefined): Record<string, string>;
  /** A request's headers: the caller's (as the route forwards them) under the key's, which win. */
  requestHeaders(caller: Readonly<Record<string, string>>, key: Readonly<Record<string, string>>): Record<string, string>;
  /**
   * The path from the origin, query included, of the upstream's WebSocket for `socket` and this
   * model; undefined when the upstream has none there (the gateway then refuses the upgrade).
   */
  socketTarget(socket: SocketEndpoint, query: URLSearchParams, model: string | undefined): string | undefined;
}

/** The WebSocket endpoints the gateway relays: Responses WebSocket mode and Realtime. */
export type SocketEndpoint = '/responses' | '/realtime';

export function adapterFor(config: UpstreamConfig, basePath: string): ProviderAdapter {
  switch (config.type) {
    case 'azure':
      return new AzureAdapter(config, basePath);
    case 'anthropic':
      return new AnthropicAdapter(config, basePath);
    default:
      return new OpenAiAdapter(config, basePath);
  }
}
