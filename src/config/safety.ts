import type { Config } from './config.js';
import { ConfigError } from './load-config.js';

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** How callers are admitted: `open` lets anyone in as `anonymous`, `keyed` wants an access token or an app key. */
export type AuthMode = 'open' | 'keyed';

export type AuthDecision = { readonly mode: AuthMode } | { readonly mode: 'refused'; readonly reason: string };

const OPEN: AuthDecision = Object.freeze({ mode: 'open' });
const KEYED: AuthDecision = Object.freeze({ mode: 'keyed' });

/**
 * The one rule for "open or keyed", applied at start-up and at each reload, never per request.
 * Open only when nothing admits a caller — no access_token, no `keys` in config.json, no app key in
 * the database at this moment — and then only on loopback or with allow_anonymous: an open
 * gateway on a public address burns its owner's quota (the seed allowed that silently). The mode
 * comes from what the owner configured, not from a live count, so deleting the last key leaves a
 * gateway that answers 401 (auth/authenticator.ts keeps it keyed), never an open one.
 * `host` is the address judged: a reload passes the one start-up bound, which it cannot move.
 */
export function decideAuthMode(config: Config, appKeysInDatabase: number, host: string = config.server.host): AuthDecision {
  if (config.accessTokens.length > 0 || config.keys.length > 0 || appKeysInDatabase > 0) return KEYED;
  if (config.server.allowAnonymous || isLoopbackHost(host)) return OPEN;
  return {
    mode: 'refused',
    reason:
      `config error: no access_token is set and no app key exists, so anyone who can reach ${host}:${config.server.port} could spend your API quota; ` +
      'set access_token (ACCESS_TOKEN) or create an app key, or listen on 127.0.0.1 (host / HOST), or set allow_anonymous: true (ALLOW_ANONYMOUS=true) to run an open gateway on purpose',
  };
}

/** Start-up's use of the rule: refuses to listen open on a public address. */
export function assertSafeToListen(config: Config, appKeysInDatabase: number): void {
  const decision = decideAuthMode(config, appKeysInDatabase);
  if (decision.mode === 'refused') throw new ConfigError(decision.reason);
}
