// Models served only by the legacy /completions endpoint (openai-protocol.md §3).
const COMPLETION_ONLY = /^(gpt-3\.5-turbo-instruct|davinci-002|babbage-002)(-|$)/;
// Reasoning models reject max_tokens and sampling parameters (openai-protocol.md §2).
const REASONING = /^(o\d+|gpt-5)(-|\.|$)/;

export function isCompletionOnlyModel(model: string): boolean {
  return COMPLETION_ONLY.test(model);
}

export function isReasoningModel(model: string): boolean {
  return REASONING.test(model);
}

/** Resolves a configured alias ("gpt4" → "gpt-4o"); unknown names pass unchanged. */
export function resolveAlias(model: string, aliases: Readonly<Record<string, string>>): string {
  return Object.hasOwn(aliases, model) ? aliases[model]! : model;
}
