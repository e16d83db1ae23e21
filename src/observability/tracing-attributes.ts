import type { EndpointKind } from '../domain/endpoint-kind.js';
import type { TracedUsage } from './tracing.js';

/**
 * Span names and attributes after the OpenTelemetry GenAI semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/) and the HTTP ones
 * (https://opentelemetry.io/docs/specs/semconv/http/http-spans/). The GenAI names are still
 * "incubating"; as the semantic-conventions package advises for those, they are copied here
 * rather than imported from its unstable entry point.
 *
 * Only names, numbers and identifiers are read: never a prompt, an answer or a key.
 */
export const ATTR = {
  operation: 'gen_ai.operation.name',
  provider: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  maxTokens: 'gen_ai.request.max_tokens',
  temperature: 'gen_ai.request.temperature',
  topP: 'gen_ai.request.top_p',
  frequencyPenalty: 'gen_ai.request.frequency_penalty',
  presencePenalty: 'gen_ai.request.presence_penalty',
  seed: 'gen_ai.request.seed',
  choiceCount: 'gen_ai.request.choice.count',
  stream: 'gen_ai.request.stream',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  cacheReadTokens: 'gen_ai.usage.cache_read.input_tokens',
  cacheCreationTokens: 'gen_ai.usage.cache_creation.input_tokens',
  reasoningTokens: 'gen_ai.usage.reasoning.output_tokens',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  method: 'http.request.method',
  route: 'http.route',
  status: 'http.response.status_code',
  resendCount: 'http.request.resend_count',
  errorType: 'error.type',
  // The gateway's own.
  keyName: 'openai_api.key.name',
  upstream: 'openai_api.upstream',
  attempt: 'openai_api.attempt',
  attempts: 'openai_api.attempts',
  requestId: 'openai_api.request.id',
  aborted: 'openai_api.aborted',
} as const;

export type SpanAttributes = Record<string, string | number | boolean>;

/** `gen_ai.operation.name` of an endpoint kind; undefined for endpoints that are no model call. */
export function operationName(kind: EndpointKind): string | undefined {
  switch (kind) {
    case 'chat':
    case 'responses':
    case 'messages':
      return 'chat';
    case 'completions':
      return 'text_completion';
    case 'embeddings':
      return 'embeddings';
    case 'other':
      return undefined;
  }
}

/**
 * `{operation} {model}` for model calls (the GenAI convention), else the HTTP one:
 * `{method} {route}`, or the method alone when no route matched.
 */
export function spanName(operation: string | undefined, model: string | undefined, method: string, route: string | undefined): string {
  if (operation !== undefined) return model === undefined ? operation : `${operation} ${model}`;
  return route === undefined ? method : `${method} ${route}`;
}

// Well-known `gen_ai.provider.name` values of OpenAI-compatible providers, by API host.
const COMPATIBLE_HOSTS: ReadonlyArray<[suffix: string, provider: string]> = [
  ['api.openai.com', 'openai'],
  ['groq.com', 'groq'],
  ['deepseek.com', 'deepseek'],
  ['mistral.ai', 'mistral_ai'],
  ['x.ai', 'x_ai'],
  ['perplexity.ai', 'perplexity'],
  ['cohere.com', 'cohere'],
  ['cohere.ai', 'cohere'],
];

function hostMatches(host: string, suffix: string): boolean {
  return host === suffix || host.endsWith(`.${suffix}`);
}

export interface UpstreamIdentity {
  readonly provider: string;
  readonly address: string;
  readonly port: number;
}

/** `gen_ai.provider.name` and `server.address`/`server.port` of an upstream, from its type and base URL. */
export function upstreamIdentity(type: string, baseUrl: string): UpstreamIdentity {
  const url = new URL(baseUrl);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  let provider: string;
  if (type === 'azure') provider = 'azure.ai.openai';
  else if (type === 'anthropic') provider = 'anthropic';
  else if (type === 'openai') provider = 'openai';
  else provider = COMPATIBLE_HOSTS.find(([suffix]) => hostMatches(host, suffix))?.[1] ?? '_OTHER';
  return { provider, address: host, port };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const finite = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/** The request's sampling parameters (`gen_ai.request.*`) as its body states them; content is never read. */
export function requestParameters(kind: EndpointKind, body: unknown, into: SpanAttributes): void {
  if (!isObject(body)) return;
  const maxTokens = kind === 'responses' ? body.max_output_tokens : (body.max_completion_tokens ?? body.max_tokens);
  if (finite(maxTokens)) into[ATTR.maxTokens] = maxTokens;
  if (finite(body.temperature)) into[ATTR.temperature] = body.temperature;
  if (finite(body.top_p)) into[ATTR.topP] = body.top_p;
  if (finite(body.frequency_penalty)) into[ATTR.frequencyPenalty] = body.frequency_penalty;
  if (finite(body.presence_penalty)) into[ATTR.presencePenalty] = body.presence_penalty;
  if (finite(body.seed)) into[ATTR.seed] = body.seed;
  if (finite(body.n) && body.n !== 1) into[ATTR.choiceCount] = body.n;
  if (body.stream === true) into[ATTR.stream] = true;
}

/** `gen_ai.usage.*` from the upstream's reported usage. */
export function usageAttributes(usage: TracedUsage, into: SpanAttributes): void {
  into[ATTR.inputTokens] = usage.promptTokens;
  into[ATTR.outputTokens] = usage.completionTokens;
  if (usage.cachedTokens > 0) into[ATTR.cacheReadTokens] = usage.cachedTokens;
  if (usage.cacheWriteTokens !== undefined && usage.cacheWriteTokens > 0) into[ATTR.cacheCreationTokens] = usage.cacheWriteTokens;
  if (usage.reasoningTokens > 0) into[ATTR.reasoningTokens] = usage.reasoningTokens;
}

/**
 * `error.type` of a finished request: the gateway's error code (low cardinality, from the
 * catalogue) when it recorded one, else the status for a server error, else none.
 */
export function requestErrorType(status: number, errorCode: string | undefined): string | undefined {
  if (errorCode !== undefined) return errorCode;
  return status >= 500 ? String(status) : undefined;
}
