import { MODEL_GLOB, MODEL_NAME } from '../config/upstream-entry.js';

// The rule for names and globs (and why a bad glob stops start-up) is documented beside the config schema.
// Matching itself is src/domain/glob.ts, shared with app keys' model lists.
export { MODEL_GLOB, MODEL_NAME };

export function isModelGlob(glob: string): boolean {
  return MODEL_GLOB.test(glob);
}

/** True for a glob without a wildcard: a model name the gateway can list. */
export function isExactModel(glob: string): boolean {
  return MODEL_NAME.test(glob);
}
