import type { ChatDefaults } from '../config/index.js';
import type { EndpointKind } from './endpoints.js';
import { isReasoningModel, resolveAlias } from './model-rules.js';
import { applyPersona, type ChatMessage } from './persona.js';

export interface V1BodyPolicy {
  modelAlias: Readonly<Record<string, string>>;
  /** The owner's defaults, applied only where the caller left a field out; undefined = transparent. */
  defaults: ChatDefaults | undefined;
}

export interface PreparedV1Body {
  /** The bytes to send: the caller's own bytes when nothing changed. */
  body: Buffer | string;
  model: string | undefined;
  stream: boolean;
  /** The gateway added `stream_options.include_usage`; the usage event must not reach the client. */
  usageInjected: boolean;
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function fillDefaults(kind: EndpointKind, body: Record<string, unknown>, defaults: ChatDefaults): boolean {
  if (kind !== 'chat' && kind !== 'completions') return false;
  let changed = false;
  const setIfMissing = (field: string, value: unknown): void => {
    if (body[field] === undefined) {
      body[field] = value;
      changed = true;
    }
  };
  setIfMissing('model', defaults.model);
  const model = String(body.model);
  if (isReasoningModel(model)) {
    if (body.max_tokens === undefined) setIfMissing('max_completion_tokens', defaults.maxTokens);
  } else {
    if (body.max_completion_tokens === undefined) setIfMissing('max_tokens', defaults.maxTokens);
    setIfMissing('temperature', defaults.temperature);
    setIfMissing('top_p', defaults.topP);
    setIfMissing('frequency_penalty', defaults.frequencyPenalty);
    setIfMissing('presence_penalty', defaults.presencePenalty);
  }
  if (kind === 'chat' && defaults.botDesc !== '' && Array.isArray(body.messages)) {
    const messages = body.messages as ChatMessage[];
    // "Only what the caller left out": a caller's own system message is kept as is.
    if (!messages.some((m) => isObject(m) && (m.role === 'system' || m.role === 'developer'))) {
      body.messages = applyPersona(messages, defaults.botDesc, 'prepend');
      changed = true;
    }
  }
  return changed;
}

/**
 * What the gateway changes in a /v1 JSON body: the model alias, `include_usage` on streamed
 * chat/completions (so every stream is metered), and — only with `v1_defaults` — the owner's
 * defaults. The caller's bytes are forwarded untouched when none applies.
 */
export function prepareV1Body(kind: EndpointKind, raw: Buffer, parsed: unknown, policy: V1BodyPolicy): PreparedV1Body {
  if (!isObject(parsed)) return { body: raw, model: undefined, stream: false, usageInjected: false };
  let changed = false;
  if (policy.defaults) changed = fillDefaults(kind, parsed, policy.defaults);
  let model = typeof parsed.model === 'string' ? parsed.model : undefined;
  if (model !== undefined) {
    const resolved = resolveAlias(model, policy.modelAlias);
    if (resolved !== model) {
      parsed.model = resolved;
      model = resolved;
      changed = true;
    }
  }
  const stream = parsed.stream === true;
  let usageInjected = false;
  if (stream && (kind === 'chat' || kind === 'completions')) {
    const options = isObject(parsed.stream_options) ? parsed.stream_options : undefined;
    if (options?.include_usage !== true) {
      parsed.stream_options = { ...options, include_usage: true };
      usageInjected = true;
      changed = true;
    }
  }
  return { body: changed ? JSON.stringify(parsed) : raw, model, stream, usageInjected };
}
