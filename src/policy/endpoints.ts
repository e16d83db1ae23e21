/** The /v1 endpoints whose bodies the gateway understands (model, usage); every other path is relayed as is. */
export type EndpointKind = 'chat' | 'completions' | 'embeddings' | 'responses' | 'other';

const KNOWN: Record<string, EndpointKind> = {
  '/chat/completions': 'chat',
  '/completions': 'completions',
  '/embeddings': 'embeddings',
  '/responses': 'responses',
};

/** `path` is below /v1 and without the query, e.g. `/chat/completions`. */
export function endpointKind(method: string, path: string): EndpointKind {
  if (method !== 'POST') return 'other';
  return KNOWN[path] ?? 'other';
}
