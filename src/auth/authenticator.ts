import type { IncomingHttpHeaders } from 'node:http';
import type { AuthMode } from '../config/safety.js';
import { GatewayError } from '../errors/index.js';
import { AccessTokens } from './access-tokens.js';
import type { AppKey } from './app-key.js';
import { presentedKey } from './bearer.js';
import { hashKeySecret } from './key-secret.js';
import type { KeyStore } from './key-store.js';

/** Who is calling, as far as limits, metering and logs are concerned. */
export type Caller =
  | { readonly kind: 'anonymous'; readonly name: string; readonly key: undefined }
  | { readonly kind: 'access_token'; readonly name: string; readonly key: undefined }
  | { readonly kind: 'app_key'; readonly name: string; readonly key: AppKey };

const ANONYMOUS: Caller = Object.freeze({ kind: 'anonymous', name: 'anonymous', key: undefined });

const invalidKey = (): GatewayError => new GatewayError('invalid_api_key', 'Invalid key: it is not known to this gateway.');

/**
 * Checks the caller's key: the seed's access tokens (unrestricted), then app keys by the
 * SHA-256 of the secret. Everyone is anonymous only in the `open` mode decided from configuration
 * (config/safety.ts `decideAuthMode`, at start and at each reload, which builds a new
 * Authenticator). That mode can close here but never reopen: once an app key exists (created by
 * the admin API or the CLI while open) every caller needs a key for good, so deleting the last key
 * leaves a gateway that answers 401 rather than an open one.
 */
export class Authenticator {
  private readonly tokens: AccessTokens;
  private readonly tokenCallers: readonly Caller[];
  private open: boolean;

  constructor(
    accessTokens: readonly string[],
    private readonly keys: KeyStore | undefined,
    mode: AuthMode,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = new AccessTokens(accessTokens);
    this.tokenCallers = accessTokens.map((_, index) => Object.freeze({ kind: 'access_token' as const, name: `access_token#${index + 1}`, key: undefined }));
    this.open = mode === 'open';
  }

  authenticate(headers: IncomingHttpHeaders): Caller | Promise<Caller> {
    if (this.open) {
      if (this.keys === undefined || this.keys.size === 0) return ANONYMOUS;
      // A key appeared while open: the owner now hands out keys, so from here on callers need one.
      this.open = false;
    }
    const secret = presentedKey(headers);
    if (secret === undefined) {
      throw new GatewayError('missing_api_key', 'Missing key: send "Authorization: Bearer <your key>".');
    }
    if (this.tokens.size > 0) {
      const index = this.tokens.match(secret);
      if (index >= 0) return this.tokenCallers[index]!;
    }
    if (!this.keys) throw invalidKey();
    const found = this.keys.lookup(hashKeySecret(secret));
    if (found instanceof Promise) {
      return found.then(
        (key) => this.admitKey(key),
        (error: unknown) => {
          throw new GatewayError('storage_unavailable', 'The key database is unavailable; try again shortly.', { cause: error });
        },
      );
    }
    return this.admitKey(found);
  }

  private admitKey(key: AppKey | undefined): Caller {
    if (!key) throw invalidKey();
    if (!key.enabled) throw new GatewayError('invalid_api_key', `Key "${key.name}" is disabled.`);
    if (key.expiresAt !== undefined && key.expiresAt <= this.now()) throw new GatewayError('invalid_api_key', `Key "${key.name}" has expired.`);
    return { kind: 'app_key', name: key.name, key };
  }
}
