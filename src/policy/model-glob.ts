/** Compiles model globs (`gpt-4o*`, `*-mini`, `*`) into one anchored RegExp; `*` is any run of characters. */
export function compileModelGlobs(patterns: readonly string[]): RegExp {
  const alternatives = patterns.map((pattern) => pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*'));
  return new RegExp(`^(?:${alternatives.join('|')})$`);
}
