import type { z } from 'zod';
import { GatewayError } from '../errors/index.js';

function pathText(path: readonly PropertyKey[]): string {
  let text = '';
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : text === '' ? String(part) : `.${String(part)}`;
  return text;
}

/** Validates a parsed body; the error names the first wrong field and what it should be. */
export function validateBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = pathText(issue.path);
  throw new GatewayError('invalid_request', where ? `${where}: ${issue.message}` : issue.message, { param: where || null });
}
