import { GatewayError } from '../errors/index.js';

/** Longer model names are refused before they reach a log line, a cache, a glob or the usage table. */
export const MAX_MODEL_BYTES = 256;

/** A model name as the caller sent it: a string of at most 256 bytes, or absent. */
export function checkedModel(value: unknown, field = 'model'): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new GatewayError('invalid_request', `"${field}" must be a string.`, { param: field });
  if (value.length > MAX_MODEL_BYTES || Buffer.byteLength(value) > MAX_MODEL_BYTES) {
    throw new GatewayError('invalid_request', `"${field}" is longer than ${MAX_MODEL_BYTES} bytes; no model has such a name.`, { param: field });
  }
  return value;
}
