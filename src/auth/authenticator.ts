import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from '../errors/index.js';
import { AccessTokens } from './access-tokens.js';
import { presentedKey } from './bearer.js';

/** Who is calling, as far as limits, metering and logs are concerned. */
export interface Caller {
  readonly kind: 'anonymous' | 'access_token';
  /** A name safe to log: never the secret itself. */
  readonly name: string;
}

const ANONYMOUS: Caller = Object.freeze({ kind: 'anonymous', name: 'anonymous' });

/** Checks the caller's key against the seed's access tokens; with none configured, everyone is anonymous. */
export class Authenticator {
  private readonly tokens: AccessTokens;
  private readonly callers: readonly Caller[];

  constructor(accessTokens: readonly string[]) {
    this.tokens = new AccessTokens(accessTokens);
    this.callers = accessTokens.map((_, index) => Object.freeze({ kind: 'access_token' as const, name: `access_token#${index + 1}` }));
  }

  get anonymous(): boolean {
    return this.tokens.size === 0;
  }

  authenticate(headers: IncomingHttpHeaders): Caller {
    if (this.anonymous) return ANONYMOUS;
    const key = presentedKey(headers);
    if (key === undefined) {
      throw new GatewayError('missing_api_key', 'Missing key: send "Authorization: Bearer <your access token>".');
    }
    const index = this.tokens.match(key);
    if (index < 0) throw new GatewayError('invalid_api_key', 'Invalid key: the access token is not known to this gateway.');
    return this.callers[index]!;
  }
}
