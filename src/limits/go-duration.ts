/**
 * Durations as Go's `time.Duration.String()` prints them, which is what OpenAI sends in
 * `x-ratelimit-reset-*`: "0s", "12ms", "1s", "9.816s", "6m0s", "1h0m0s".
 * See /work/shared/reference/openai-protocol.md §8 and https://pkg.go.dev/time#Duration.String.
 * Millisecond resolution: fractions of a millisecond round up, so a reset is never announced early.
 */
export function formatGoDuration(ms: number): string {
  if (!(ms > 0)) return '0s';
  const total = Math.ceil(ms);
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const millis = total % 60_000;
  const seconds = millis % 1000 === 0 ? String(millis / 1000) : (millis / 1000).toFixed(3).replace(/0+$/, '');
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}
