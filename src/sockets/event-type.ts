/** `{"type":"…"` at the start of a message, as OpenAI's servers write every event. */
const LEADING_TYPE = /^\s*\{\s*"type"\s*:\s*"([a-z_.]{1,64})"/;
/** How far into a message its leading type is looked for. */
const HEAD_BYTES = 96;

/**
 * The `type` of an upstream event without parsing it: OpenAI writes `type` first, so the head of
 * the message tells whether the relay needs the rest (a terminal event with usage, an error) or
 * can pass it on unread (deltas, which are most of a stream). Undefined when the head does not
 * start that way; the caller then parses the message. Only for upstream messages: a client could
 * put a second `type` later in the same object, so what clients send is always parsed whole.
 */
export function leadingType(message: Buffer): string | undefined {
  return LEADING_TYPE.exec(message.toString('latin1', 0, Math.min(message.length, HEAD_BYTES)))?.[1];
}

/** A parsed JSON object, or undefined for anything else (invalid JSON, an array, a scalar). */
export function parseEvent(message: Buffer | string): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof message === 'string' ? message : message.toString('utf8'));
  } catch {
    return undefined;
  }
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
}
