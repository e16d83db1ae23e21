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
