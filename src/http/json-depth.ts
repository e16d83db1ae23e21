import { GatewayError } from '../errors/index.js';

/**
 * Deepest nesting of arrays and objects a JSON body may have. Real requests stay far below it
 * (a tool's JSON Schema is a few dozen levels); far deeper bodies — `[[[[…` a hundred thousand
 * times fits in a few hundred KiB — would overflow the stack of every recursive walk after the
 * parse (JSON.stringify of a rewritten body, validation, token estimates).
 */
export const MAX_JSON_DEPTH = 256;

/** Whether `value` nests arrays/objects deeper than `max`; iterative, so any depth is safe to ask about. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: Array<{ node: object; depth: number }> = [{ node: value, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    const children: unknown[] = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (child === null || typeof child !== 'object') continue;
      if (depth + 1 > max) return true;
      stack.push({ node: child, depth: depth + 1 });
    }
  }
  return false;
}

/** Refuses a parsed body nested deeper than MAX_JSON_DEPTH with a 400. */
export function assertJsonDepth(value: unknown): void {
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) {
    throw new GatewayError('invalid_json', `Request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels.`);
  }
}
