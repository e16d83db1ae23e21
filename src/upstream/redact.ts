// Provider key shapes that may be echoed back in upstream messages ("Incorrect API key provided: sk-ab***yz").
const KEY_PATTERN = /\b(sk|oa|rk|gsk|pk)-[A-Za-z0-9_*.-]{6,}/g;

/** Removes every configured secret and anything shaped like a key from text bound for a client or a log. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length >= 4 && result.includes(secret)) result = result.split(secret).join('[redacted]');
  }
  return result.replace(KEY_PATTERN, '$1-[redacted]');
}
