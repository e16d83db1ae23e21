import { Glob } from '../domain/glob.js';

// Models served only by the legacy /completions endpoint (openai-protocol.md §3).
const COMPLETION_ONLY = /^(gpt-3\.5-turbo-instruct|davinci-002|babbage-002)(-|$)/;
// Reasoning models reject max_tokens and sampling parameters (openai-protocol.md §2).
const REASONING = /^(o\d+|gpt-5)(-|\.|$)/;

/**
 * The most output tokens OpenAI models take in one answer (their model pages) [verify]: a request
 * translated from another API (Claude Code asks for 32000) is capped to it rather than refused.
 */
const MAX_OUTPUT: ReadonlyArray<readonly [RegExp, number]> = [
  [/^gpt-4o(-mini)?(-|$)/, 16_384],
  [/^gpt-4\.1(-|$)/, 32_768],
  [/^gpt-5(-|\.|$)/, 128_000],
  [/^o\d+(-|$)/, 100_000],
  [/^gpt-3\.5-turbo(-|$)/, 4_096],
];

/** The output-token maximum of a known OpenAI model, or undefined. */
export function maxOutputTokens(model: string): number | undefined {
  for (const [pattern, most] of MAX_OUTPUT) if (pattern.test(model)) return most;
  return undefined;
}

export function isCompletionOnlyModel(model: string): boolean {
  return COMPLETION_ONLY.test(model);
}

export function isReasoningModel(model: string): boolean {
  return REASONING.test(model);
}

/** The glob keys of one `model_alias` table, compiled once (the table is the frozen config's). */
const compiledGlobs = new WeakMap<object, ReadonlyArray<readonly [Glob, string]>>();

function globAliases(aliases: Readonly<Record<string, string>>): ReadonlyArray<readonly [Glob, string]> {
  let globs = compiledGlobs.get(aliases);
  if (globs === undefined) {
    globs = Object.entries(aliases)
      .filter(([name]) => name.includes('*'))
      .map(([name, target]) => [new Glob(name), target] as const);
    compiledGlobs.set(aliases, globs);
  }
  return globs;
}

/**
 * Resolves a configured alias: an exact name first ("gpt4" → "gpt-4o"), else the first glob key
 * that matches, in config order ("claude-*" → "gpt-4o": Claude Code served by OpenAI); unknown
 * names pass unchanged.
 */
export function resolveAlias(model: string, aliases: Readonly<Record<string, string>>): string {
  if (Object.hasOwn(aliases, model)) return aliases[model]!;
  const globs = globAliases(aliases);
  for (const [glob, target] of globs) if (glob.matches(model)) return target;
  return model;
}
