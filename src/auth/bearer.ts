import type { IncomingHttpHeaders } from 'node:http';

/**
 * The caller's key from `Authorization: Bearer <key>` (scheme case-insensitive, as RFC 7235 says),
 * else from `api-key` (what Azure-style clients send), else from `x-api-key` (Anthropic's clients:
 * the SDK and Claude Code with ANTHROPIC_API_KEY). Only the prefix is removed — the seed's
 * replace-all also mangled tokens that contained "Bearer ".
 */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
    return match ? match[1] : undefined;
  }
  return headerKey(headers['api-key']) ?? headerKey(headers['x-api-key']);
}

function headerKey(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const key = value.trim();
  return key.length > 0 ? key : undefined;
}
