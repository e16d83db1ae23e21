import type { IncomingHttpHeaders } from 'node:http';

/**
 * The caller's key from `Authorization: Bearer <key>` (scheme case-insensitive, as RFC 7235 says),
 * or from `api-key` (what Azure-style clients send). Only the prefix is removed — the seed's
 * replace-all also mangled tokens that contained "Bearer ".
 */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
    return match ? match[1] : undefined;
  }
  const apiKey = headers['api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey.trim() : undefined;
}
