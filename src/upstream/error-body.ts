import { redactSecrets } from './redact.js';

const MAX_MESSAGE = 500;

/** The human message inside an upstream error body (OpenAI, Azure and most compatibles nest it in `error.message`). */
export function upstreamErrorMessage(status: number, body: string, secrets: readonly string[]): string {
  let message: string | undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof parsed.error === 'string') message = parsed.error;
    else if (parsed.error && typeof parsed.error.message === 'string') message = parsed.error.message;
    else if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    message = body.trim().slice(0, MAX_MESSAGE);
  }
  const text = message && message.length > 0 ? message.slice(0, MAX_MESSAGE) : `HTTP ${status} with no message`;
  return redactSecrets(text, secrets);
}
