import { MODEL_GLOB, MODEL_NAME } from '../config/upstream-entry.js';

// The rule for names and globs (and why a bad glob stops start-up) is documented beside the config schema.
export { MODEL_GLOB, MODEL_NAME };

export function isModelGlob(glob: string): boolean {
  return MODEL_GLOB.test(glob);
}

/** True for a glob without a wildcard: a model name the gateway can list. */
export function isExactModel(glob: string): boolean {
  return MODEL_NAME.test(glob);
}

/** One anchored RegExp for a glob; every character but `*` is literal. */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${globSource(glob)}$`);
}

function globSource(glob: string): string {
  return glob
    .split(/\*+/)
    .map((part) => part.replace(/[.+/]/g, '\\$&'))
    .join('.*');
}

/** The `models` of one upstream, compiled once into a single RegExp (or a flag for `*`). */
export class ModelMatcher {
  private readonly any: boolean;
  private readonly pattern: RegExp | undefined;
  readonly exact: readonly string[];

  constructor(globs: readonly string[]) {
    this.any = globs.some((glob) => /^\*+$/.test(glob));
    this.exact = globs.filter(isExactModel);
    this.pattern = this.any || globs.length === 0 ? undefined : new RegExp(`^(?:${globs.map(globSource).join('|')})$`);
  }

  matches(model: string): boolean {
    if (this.any) return true;
    return this.pattern !== undefined && this.pattern.test(model);
  }
}
