/**
 * USD per 1M tokens. `cachedInput` defaults to `input`; `output` to 0 (embeddings produce none);
 * `audioInput` and `audioOutput` (Realtime and audio models) to the text prices.
 */
export interface ModelPrice {
  input: number;
  cachedInput?: number;
  output?: number;
  audioInput?: number;
  audioOutput?: number;
}
