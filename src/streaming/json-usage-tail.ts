import { usageFromAnthropic, usageFromAnthropicJsonBuffer, usageFromJsonBuffer, usageFromObject, type Usage } from './usage.js';

const USAGE_KEY = Buffer.from('"usage"');
/** OpenAI puts `usage` last (chat, completions, embeddings) or near the end (Responses); look only there. */
const TAIL_BYTES = 64 * 1024;

/** The balanced `{...}` object starting at `start`, or -1 when it does not close in `text`. */
function objectEnd(text: Buffer, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) return i + 1;
  }
  return -1;
}

/**
 * Usage from a JSON response body received as chunks, without parsing the whole body: a 20 MB
 * embeddings answer costs a scan of its last 64 KiB, not a JSON.parse of everything. An
 * Anthropic message body (`protocol` 'anthropic') also ends with its `usage`, read in its meaning.
 */
export function usageFromJsonChunks(chunks: readonly Buffer[], totalLength: number, protocol: 'openai' | 'anthropic' = 'openai'): Usage | undefined {
  if (totalLength === 0) return undefined;
  const tail = tailOf(chunks, totalLength);
  let at = tail.lastIndexOf(USAGE_KEY);
  while (at !== -1) {
    let i = at + USAGE_KEY.length;
    while (i < tail.length && (tail[i] === 0x20 || tail[i] === 0x0a || tail[i] === 0x0d || tail[i] === 0x09)) i++;
    if (tail[i] === 0x3a) {
      i++;
      while (i < tail.length && (tail[i] === 0x20 || tail[i] === 0x0a || tail[i] === 0x0d || tail[i] === 0x09)) i++;
      if (tail[i] === 0x7b) {
        const end = objectEnd(tail, i);
        if (end !== -1) {
          try {
            const usage: unknown = JSON.parse(tail.toString('utf8', i, end));
            return protocol === 'anthropic' ? usageFromAnthropic(usage) : usageFromObject({ usage });
          } catch {
            return undefined;
          }
        }
      }
    }
    at = at === 0 ? -1 : tail.lastIndexOf(USAGE_KEY, at - 1);
  }
  // A small body whose usage sits elsewhere (e.g. nested in a Responses object): parse it whole.
  if (totalLength > TAIL_BYTES) return undefined;
  return protocol === 'anthropic' ? usageFromAnthropicJsonBuffer(tail) : usageFromJsonBuffer(tail);
}

function tailOf(chunks: readonly Buffer[], totalLength: number): Buffer {
  if (chunks.length === 1) return totalLength <= TAIL_BYTES ? chunks[0]! : chunks[0]!.subarray(totalLength - TAIL_BYTES);
  const picked: Buffer[] = [];
  let size = 0;
  for (let i = chunks.length - 1; i >= 0 && size < TAIL_BYTES; i--) {
    picked.unshift(chunks[i]!);
    size += chunks[i]!.length;
  }
  const joined = Buffer.concat(picked, size);
  return size > TAIL_BYTES ? joined.subarray(size - TAIL_BYTES) : joined;
}
