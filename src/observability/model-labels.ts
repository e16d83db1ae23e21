/** The `model` label of a request whose model is not in the known set. */
export const OTHER = 'other';
/** The label of a value a request does not have (no model named, no caller, not sent upstream). */
export const NONE = 'none';

/**
 * At most this many known model names: a catalogue listing thousands of fine-tunes keeps its first
 * ones named and folds the rest into `other`.
 */
export const MAX_KNOWN_MODELS = 2000;
/** Longer names are not labels anyone charts; they fold into `other`. */
const MAX_NAME_LENGTH = 200;

/**
 * The known model names (price table, upstream config, aliases, the catalogue) as one lookup:
 * a name maps to itself, so a label is always the stored string (its hash computed once).
 * Glob patterns (`gpt-4o*`) are not names and are left out.
 */
export function knownModels(lists: Iterable<Iterable<string>>, limit = MAX_KNOWN_MODELS): ReadonlyMap<string, string> {
  const known = new Map<string, string>();
  for (const list of lists) {
    for (const name of list) {
      if (known.size >= limit) return known;
      if (name.length === 0 || name.length > MAX_NAME_LENGTH || name.includes('*') || name === OTHER || name === NONE) continue;
      known.set(name, name);
    }
  }
  return known;
}

/**
 * A request's model as a label: its name when the gateway knows it, `other` when not, `none`
 * when the request named no model. Names come from callers, so without the fold one caller
 * could create a series per request (random model names); with it the label takes at most
 * MAX_KNOWN_MODELS + 2 values.
 */
export function modelLabel(known: ReadonlyMap<string, string>, model: string | undefined): string {
  if (model === undefined) return NONE;
  return known.get(model) ?? OTHER;
}
