import { nestedDeeperThan } from '../config/json-depth.js';
import { GatewayError } from '../errors/index.js';

/**
 * Deepest nesting of arrays and objects a JSON body may have. Real requests stay far below it
 * (a tool's JSON Schema is a few dozen levels); far deeper bodies — `[[[[…` a hundred thousand
 * times fits in a few hundred KiB — would overflow the stack of every recursive walk after the
 * parse (JSON.stringify of a rewritten body, validation, token estimates).
 */
export const MAX_JSON_DEPTH = 256;

/** Refuses a parsed body nested deeper than MAX_JSON_DEPTH with a 400. */
export function assertJsonDepth(value: unknown): void {
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) {
    throw new GatewayError('invalid_json', `Request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels.`);
  }
}
