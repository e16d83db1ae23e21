/**
 * What one instance learned about an upstream key, in a form fit to tell the others: the key is
 * named by its upstream and fingerprint (KeySlot.fingerprint), never by its secret. `disabled`:
 * the upstream refused it (401/402/403, or 429 insufficient_quota); `cooling`: rate-limited, rest
 * `ms` from now.
 */
export type KeyVerdict =
  | { readonly upstream: string; readonly key: string; readonly state: 'disabled'; readonly status: number }
  | { readonly upstream: string; readonly key: string; readonly state: 'cooling'; readonly ms: number };

export type KeyVerdictListener = (verdict: KeyVerdict) => void;

/** The reason a key set aside with this status shows in logs and /admin/status. */
export function disabledReason(status: number): string {
  return status === 429 ? 'HTTP 429 insufficient_quota' : `HTTP ${status}`;
}
