/**
 * USD per 1M tokens. `cachedInput` (prompt tokens read from the cache) and `cacheWrite` (prompt
 * tokens written to it, as Anthropic charges) default to `input`; `output` to 0 (embeddings
 * produce none); `audioInput` and `audioOutput` (Realtime and audio models) to the text prices.
 */
export interface ModelPrice {
  input: number;
  cachedInput?: number;
  cacheWrite?: number;
  output?: number;
  audioInput?: number;
  audioOutput?: number;
}
