import type { UpstreamConfig } from '../../config/upstream-entry.js';
import type { ProviderAdapter, SocketEndpoint } from './adapter.js';

/**
 * OpenAI and every OpenAI-compatible provider: `{base_url}{path}`, `Authorization: Bearer KEY`
 * (none without a key, e.g. a local Ollama), plus the entry's extra headers.
 */
export class OpenAiAdapter implements ProviderAdapter {
  constructor(
    private readonly config: UpstreamConfig,
    private readonly basePath: string,
  ) {}

  servesModel(): boolean {
    return true;
  }

  servesWithoutModel(): boolean {
    return true;
  }

  target(path: string): string {
    return this.basePath + path;
  }

  requestHeaders(caller: Readonly<Record<string, string>>, key: Readonly<Record<string, string>>): Record<string, string> {
    return { ...caller, ...key };
  }

  keyHeaders(key: string | undefined): Record<string, string> {
    return key === undefined ? { ...this.config.headers } : { ...this.config.headers, authorization: `Bearer ${key}` };
  }

  /** `{base_url}/responses` and `{base_url}/realtime?model=…`, as wss:// (https://platform.openai.com/docs/guides/realtime-websocket). */
  socketTarget(socket: SocketEndpoint, query: URLSearchParams): string | undefined {
    if (!this.config.websockets) return undefined;
    const search = query.toString();
    return `${this.basePath}${socket}${search === '' ? '' : `?${search}`}`;
  }
}
