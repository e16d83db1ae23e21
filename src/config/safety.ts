import type { Config } from './config.js';
import { ConfigError } from './load-config.js';

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * An open gateway on a public address burns its owner's quota; the seed allowed it silently.
 * With no caller credentials configured we only listen on loopback unless told otherwise.
 */
export function assertSafeToListen(config: Config, callersConfigured: boolean): void {
  if (callersConfigured || config.server.allowAnonymous || isLoopbackHost(config.server.host)) return;
  throw new ConfigError(
    `config error: no access_token is set, so anyone who can reach ${config.server.host}:${config.server.port} could spend your API quota; ` +
      'set access_token (ACCESS_TOKEN), or listen on 127.0.0.1 (host / HOST), or set allow_anonymous: true (ALLOW_ANONYMOUS=true) to run an open gateway on purpose',
  );
}
