import type { ChatDefaults } from '../config/index.js';
import type { KeyDefaults, PersonaMode } from '../domain/key-settings.js';
import type { EndpointKind } from './endpoints.js';
import { isReasoningModel, resolveAlias } from './model-rules.js';
import { applyPersona, type ChatMessage } from './persona.js';

/** What an app key adds to its requests (its owner's persona, defaults and ceiling). */
export interface KeyPolicy {
  persona: { text: string; mode: PersonaMode } | undefined;
  defaults: KeyDefaults | undefined;
  maxTokensCeiling: number | undefined;
}

/** The policy an app key carries into its bodies; undefined when it carries none (most keys). */
export function keyPolicyOf(key: { persona?: KeyPolicy['persona']; defaults?: KeyPolicy['defaults']; maxTokensCeiling?: number } | undefined): KeyPolicy | undefined {
  if (!key || (!key.persona && !key.defaults && key.maxTokensCeiling === undefined)) return undefined;
  return { persona: key.persona, defaults: key.defaults, maxTokensCeiling: key.maxTokensCeiling };
}

export interface V1BodyPolicy {
  modelAlias: Readonly<Record<string, string>>;
  /** The owner's global defaults (`v1_defaults: true`), filling only what the caller left out. */
  defaults: ChatDefaults | undefined;
  /** The caller's app key, when it carries a persona, defaults or a ceiling. */
  key: KeyPolicy | undefined;
  /** Whether the upstreams serving this (alias-resolved) model accept `stream_options.include_usage`. */
  includeUsage: (model: string | undefined) => boolean;
}

export interface PreparedV1Body {
  /** The bytes to send: the caller's own bytes when nothing changed. */
  body: Buffer | string;
  model: string | undefined;
  stream: boolean;
  /** The gateway added `stream_options.include_usage`; the usage event must not reach the client. */
  usageInjected: boolean;
}

type Body = Record<string, unknown>;

const isObject = (value: unknown): value is Body => value !== null && typeof value === 'object' && !Array.isArray(value);

class Edit {
  changed = false;
  constructor(readonly body: Body) {}
  fill(field: string, value: unknown): void {
    if (value !== undefined && this.body[field] === undefined) {
      this.body[field] = value;
      this.changed = true;
    }
  }
  set(field: string, value: unknown): void {
    this.body[field] = value;
    this.changed = true;
  }
}

const MAX_FIELDS = ['max_completion_tokens', 'max_tokens', 'max_output_tokens'] as const;

function maxTokensField(kind: EndpointKind, model: string): string {
  if (kind === 'responses') return 'max_output_tokens';
  return kind === 'chat' && isReasoningModel(model) ? 'max_completion_tokens' : 'max_tokens';
}

function fillSampling(edit: Edit, kind: EndpointKind, model: string, values: { maxTokens?: number; temperature?: number; topP?: number; frequencyPenalty?: number; presencePenalty?: number }): void {
  if (!MAX_FIELDS.some((field) => edit.body[field] !== undefined)) edit.fill(maxTokensField(kind, model), values.maxTokens);
  // Reasoning models reject sampling parameters (openai-protocol.md §2).
  if (isReasoningModel(model) || kind === 'embeddings') return;
  edit.fill('temperature', values.temperature);
  edit.fill('top_p', values.topP);
  if (kind === 'responses') return;
  edit.fill('frequency_penalty', values.frequencyPenalty);
  edit.fill('presence_penalty', values.presencePenalty);
}

function applyKeyPersona(edit: Edit, kind: EndpointKind, persona: { text: string; mode: PersonaMode }): void {
  if (persona.mode === 'off' || persona.text === '') return;
  if (kind === 'chat' && Array.isArray(edit.body.messages)) {
    edit.set('messages', applyPersona(edit.body.messages as ChatMessage[], persona.text, persona.mode));
  } else if (kind === 'responses') {
    const own = typeof edit.body.instructions === 'string' ? edit.body.instructions : '';
    edit.set('instructions', persona.mode === 'replace' || own === '' ? persona.text : `${persona.text}\n\n${own}`);
  }
}

function applyCeiling(edit: Edit, kind: EndpointKind, model: string, ceiling: number): void {
  let present = false;
  for (const field of MAX_FIELDS) {
    const value = edit.body[field];
    if (typeof value !== 'number') continue;
    present = true;
    if (value > ceiling) edit.set(field, ceiling);
  }
  if (!present) edit.set(maxTokensField(kind, model), ceiling);
}

/**
 * What the gateway changes in a /v1 JSON body: the model alias, `include_usage` on streamed
 * chat/completions (so every stream is metered), the caller key's persona, defaults and
 * max_tokens ceiling, and — only with `v1_defaults` — the owner's global defaults. The caller's
 * bytes are forwarded untouched when none applies.
 */
export function prepareV1Body(kind: EndpointKind, raw: Buffer, parsed: unknown, policy: V1BodyPolicy): PreparedV1Body {
  if (!isObject(parsed)) return { body: raw, model: undefined, stream: false, usageInjected: false };
  const edit = new Edit(parsed);
  const generative = kind === 'chat' || kind === 'completions' || kind === 'responses';
  const key = policy.key;
  if (key?.defaults?.model) edit.fill('model', key.defaults.model);
  if (policy.defaults && generative) edit.fill('model', policy.defaults.model);

  let model = typeof parsed.model === 'string' ? parsed.model : undefined;
  if (model !== undefined) {
    const resolved = resolveAlias(model, policy.modelAlias);
    if (resolved !== model) {
      edit.set('model', resolved);
      model = resolved;
    }
  }
  if (generative) {
    const name = model ?? '';
    if (key?.persona) applyKeyPersona(edit, kind, key.persona);
    if (key?.defaults) {
      const d = key.defaults;
      fillSampling(edit, kind, name, { maxTokens: d.max_tokens, temperature: d.temperature, topP: d.top_p, frequencyPenalty: d.frequency_penalty, presencePenalty: d.presence_penalty });
    }
    if (policy.defaults) {
      const d = policy.defaults;
      // "Only what the caller left out": a caller's own system message is kept as is.
      const messages = parsed.messages;
      if (!key?.persona && kind === 'chat' && Array.isArray(messages) && !messages.some((m) => isObject(m) && (m.role === 'system' || m.role === 'developer'))) {
        applyKeyPersona(edit, kind, { text: d.botDesc, mode: 'prepend' });
      }
      fillSampling(edit, kind, name, d);
    }
    if (key?.maxTokensCeiling !== undefined) applyCeiling(edit, kind, name, key.maxTokensCeiling);
  }

  const stream = parsed.stream === true;
  let usageInjected = false;
  if (stream && (kind === 'chat' || kind === 'completions') && policy.includeUsage(model)) {
    const options = isObject(parsed.stream_options) ? parsed.stream_options : undefined;
    if (options?.include_usage !== true) {
      edit.set('stream_options', { ...options, include_usage: true });
      usageInjected = true;
    }
  }
  return { body: edit.changed ? JSON.stringify(parsed) : raw, model, stream, usageInjected };
}
