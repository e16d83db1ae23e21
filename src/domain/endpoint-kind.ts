/** How the gateway meters a /v1 request: the bodies whose usage and estimates it understands. */
export type EndpointKind = 'chat' | 'completions' | 'embeddings' | 'responses' | 'messages' | 'other';
