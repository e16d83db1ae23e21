import { errors as undiciErrors } from 'undici';
import { GatewayError } from '../errors/index.js';

export interface TimeoutSettings {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
}

const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(3))} s`;

const UNREACHABLE_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ENOTFOUND: 'host not found (DNS)',
  EAI_AGAIN: 'DNS lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed by the upstream',
  UND_ERR_CLOSED: 'connection closed',
};

const TLS_CODES = new Set(['CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID']);

export function isTlsFailureCode(code: string): boolean {
  return /^ERR_(TLS|SSL)/.test(code) || TLS_CODES.has(code);
}

/** The first string `code` on the error or its causes (undici wraps socket errors). */
export function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Turns a failed upstream call into the client's answer: timeouts are 504, everything that
 * kept us from a usable answer is 502. The message names the upstream and what happened —
 * never a URL query, header or key.
 */
export function upstreamFailure(error: unknown, upstreamName: string, timeouts: TimeoutSettings): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof undiciErrors.HeadersTimeoutError) {
    return new GatewayError('upstream_timeout', `Upstream "${upstreamName}" sent no response within ${seconds(timeouts.firstByteTimeoutMs)}.`, { cause: error });
  }
  if (error instanceof undiciErrors.BodyTimeoutError) {
    return new GatewayError('upstream_timeout', `Upstream "${upstreamName}" stopped sending for ${seconds(timeouts.idleTimeoutMs)}.`, { cause: error });
  }
  if (error instanceof undiciErrors.ConnectTimeoutError) {
    return new GatewayError('upstream_timeout', `Upstream "${upstreamName}" could not be connected within ${seconds(timeouts.connectTimeoutMs)}.`, { cause: error });
  }
  const code = errorCode(error);
  if (code !== undefined && isTlsFailureCode(code)) {
    return new GatewayError('upstream_unreachable', `Upstream "${upstreamName}" failed TLS (${code}).`, { cause: error });
  }
  const reason = (code && UNREACHABLE_CODES[code]) ?? (code ? `network error ${code}` : 'network error');
  return new GatewayError('upstream_unreachable', `Upstream "${upstreamName}" is unreachable: ${reason}.`, { cause: error });
}
