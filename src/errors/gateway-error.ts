import { ERROR_CATALOGUE, type ErrorCode } from './catalogue.js';

export interface GatewayErrorOptions {
  param?: string | null;
  /** Extra response headers, e.g. Retry-After on 429. */
  headers?: Record<string, string>;
  /** Overrides the catalogue status, e.g. to pass an upstream 4xx through /api/chat's envelope. */
  status?: number;
  cause?: unknown;
}

/** The one error type the gateway throws; `errors/render.ts` turns it into an HTTP answer. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    const spec = ERROR_CATALOGUE[code];
    this.status = options.status ?? spec.status;
    this.type = spec.type;
    this.param = options.param ?? null;
    this.headers = options.headers;
  }
}
