import type { UpstreamConfig } from '../../config/upstream-entry.js';
import { DEFAULT_ANTHROPIC_VERSION } from '../../config/upstream-entry.js';
import type { ProviderAdapter } from './adapter.js';

/**
 * Anthropic's API (https://docs.anthropic.com/en/api/overview): `{base_url}{path}` with base_url
 * including `/v1`, as for OpenAI, so `/messages?beta=true` becomes `/v1/messages?beta=true`. The
 * key travels as `x-api-key`. `anthropic-version` is the caller's when it sent one — the caller's
 * SDK reads the answer in that version's shape (`@anthropic-ai/sdk` 1.x sends 2026-10-21, Claude
 * Code 2023-06-01) — else the entry's `anthropic_version` (translated requests, the model list).
 * No WebSockets; `GET /models` is the only request that needs no model.
 */
export class AnthropicAdapter implements ProviderAdapter {
  private readonly version: string;

  constructor(
    private readonly config: UpstreamConfig,
    private readonly basePath: string,
  ) {
    this.version = config.anthropicVersion ?? DEFAULT_ANTHROPIC_VERSION;
  }

  servesModel(): boolean {
    return true;
  }

  servesWithoutModel(pathname: string): boolean {
    return pathname === '/models';
  }

  target(path: string): string {
    return this.basePath + path;
  }

  requestHeaders(caller: Readonly<Record<string, string>>, key: Readonly<Record<string, string>>): Record<string, string> {
    return { 'anthropic-version': this.version, ...caller, ...key };
  }

  /** The entry's headers and `x-api-key`; an `anthropic-version` among the entry's headers pins it for every request. */
  keyHeaders(key: string | undefined): Record<string, string> {
    return key === undefined ? { ...this.config.headers } : { ...this.config.headers, 'x-api-key': key };
  }

  socketTarget(): undefined {
    return undefined;
  }
}
