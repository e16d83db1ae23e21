import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from './catalogue.js';
import { GatewayError } from './gateway-error.js';

/** How a route answers errors: OpenAI's JSON shape, the seed's `{code,data,msg}` envelope, or Anthropic's shape. */
export type ErrorFormat = 'openai' | 'envelope' | 'anthropic';

/** What the OpenAI shape shows of an error: a GatewayError, or the same fields taken from one. */
export interface OpenAiError {
  readonly message: string;
  readonly type: string;
  readonly code: ErrorCode;
  readonly param?: string | null;
}

/** What the seed's envelope shows of an error. */
export interface EnvelopeError {
  readonly status: number;
  readonly message: string;
}

/**
 * OpenAI's error object, https://platform.openai.com/docs/guides/error-codes: openai-node builds
 * its `APIError` (status, code, param, type) from these four fields.
 */
export function openAiErrorBody(error: OpenAiError): string {
  return JSON.stringify({ error: { message: error.message, type: error.type, param: error.param ?? null, code: error.code } });
}

/** The seed's envelope: the HTTP status inside, `data` null. */
export function envelopeErrorBody(error: EnvelopeError): string {
  return JSON.stringify({ code: error.status, data: null, msg: error.message });
}

/**
 * A mid-stream error in the framing openai-node turns into an `APIError` on every version: a
 * `data:` event with a top-level `error`, no event name
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
 * The caller ends the stream after it; it must start at an event boundary.
 */
export function sseErrorEvent(error: OpenAiError): Buffer {
  return Buffer.from(`data: ${openAiErrorBody(error)}\n\n`);
}

/** A mid-stream error on the seed's /api/chat stream: `event: error` carrying the envelope. */
export function envelopeSseErrorEvent(error: EnvelopeError): Buffer {
  return Buffer.from(`event: error\ndata: ${envelopeErrorBody(error)}\n\n`);
}

/**
 * Anthropic's error `type` for an HTTP status (https://docs.anthropic.com/en/api/errors): the
 * Anthropic SDKs and Claude Code classify errors by it (and retry 429, 500 and 529).
 */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
    case 413:
    case 415:
    case 426:
      return status === 413 ? 'request_too_large' : 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    case 529:
    case 503:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/** Anthropic's error body, `{"type":"error","error":{"type","message"}}`, plus our stable `code` beside them (clients ignore unknown fields). */
export function anthropicErrorBody(error: { status: number; message: string; code?: string }): string {
  return JSON.stringify({ type: 'error', error: { type: anthropicErrorType(error.status), message: error.message, ...(error.code === undefined ? {} : { code: error.code }) } });
}

/** Anthropic's mid-stream error: `event: error` with the error body. */
export function anthropicSseErrorEvent(error: { status: number; message: string; code?: string }): Buffer {
  return Buffer.from(`event: error\ndata: ${anthropicErrorBody(error)}\n\n`);
}

/** The error event that ends a stream in a route's format. */
export function sseErrorFrame(format: ErrorFormat, error: GatewayError): Buffer {
  if (format === 'anthropic') return anthropicSseErrorEvent(error);
  return format === 'envelope' ? envelopeSseErrorEvent(error) : sseErrorEvent(error);
}

/** Maps Fastify's own errors (body parsing, limits) onto the catalogue; anything else is a bug. */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  const fastifyError = error as Partial<FastifyError>;
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError('body_too_large', 'Request body is larger than the configured limit.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError('invalid_content_type', 'Content-Type must be application/json.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GatewayError('invalid_json', 'Request body is empty; expected a JSON object.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new GatewayError('invalid_json', `Request body is not valid JSON: ${fastifyError.message ?? ''}`.trim());
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatewayError('invalid_request', 'Content-Length does not match the body.');
    default:
      break;
  }
  if (error instanceof SyntaxError) {
    return new GatewayError('invalid_json', `Request body is not valid JSON: ${error.message}`);
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new GatewayError('invalid_request', fastifyError.message ?? 'Bad request.', { status });
  }
  return new GatewayError('internal_error', 'Internal error; see the gateway log for this request id.', { cause: error });
}

export function errorFormatOf(request: FastifyRequest): ErrorFormat {
  const configured = (request.routeOptions.config as { errorFormat?: ErrorFormat } | undefined)?.errorFormat;
  if (configured) return configured;
  const url = request.url;
  return url.startsWith('/api/') || url.startsWith('/ai/') ? 'envelope' : 'openai';
}

/** The one place a GatewayError becomes an HTTP answer. */
export function sendError(request: FastifyRequest, reply: FastifyReply, error: GatewayError): FastifyReply {
  if (error.headers) reply.headers(error.headers);
  reply.header('content-type', 'application/json; charset=utf-8');
  const format = errorFormatOf(request);
  if (format === 'envelope') {
    // The seed answered every error with HTTP 200 and the real status inside the envelope.
    return reply.code(200).send(envelopeErrorBody(error));
  }
  if (format === 'anthropic') return reply.code(error.status).send(anthropicErrorBody(error));
  return reply.code(error.status).send(openAiErrorBody(error));
}
