import { z } from 'zod';
import type { ChatDefaults } from '../config/index.js';
import { conversationIdProblem } from '../domain/conversation.js';
import type { PersonaMode } from '../domain/key-settings.js';
import { isCompletionOnlyModel, isReasoningModel } from './model-rules.js';
import { applyPersona, type ChatMessage } from './persona.js';

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

const message = z
  .object({
    role: z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` }),
    content: z.union([z.string(), z.array(z.unknown()), z.null()], { error: 'must be a string, an array of content parts, or null' }).optional(),
  })
  .loose();

const number = (min: number, max: number) => z.number({ error: `must be a number from ${min} to ${max}` }).min(min, { error: `must be a number from ${min} to ${max}` }).max(max, { error: `must be a number from ${min} to ${max}` });

/** The body of the seed's `POST /api/chat`, plus the per-request overrides we accept. */
export const apiChatBody = z
  .object({
    prompt: z.string({ error: 'must be a string' }).optional(),
    messages: z.array(message, { error: 'must be an array of {role, content} messages' }).min(1, { error: 'must hold at least one message' }).optional(),
    // Longer names are refused before they reach a log line, a cache or the usage table (no model has one).
    model: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(256, { error: 'must be at most 256 characters' }).refine((name) => Buffer.byteLength(name) <= 256, { error: 'must be at most 256 bytes' }).optional(),
    max_tokens: z.number({ error: 'must be a positive integer' }).int({ error: 'must be a positive integer' }).positive({ error: 'must be a positive integer' }).optional(),
    temperature: number(0, 2).optional(),
    top_p: number(0, 1).optional(),
    frequency_penalty: number(-2, 2).optional(),
    presence_penalty: number(-2, 2).optional(),
    stream: z.boolean({ error: 'must be true or false' }).optional(),
    // The bot's user or chat id: the gateway keeps the conversation (README, "Conversations").
    conversation_id: z
      .string({ error: 'must be a string of 1 to 128 characters (the user or chat id)' })
      .superRefine((id, ctx) => {
        const problem = conversationIdProblem(id);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
  })
  .loose()
  .superRefine((body, ctx) => {
    if (body.conversation_id !== undefined && body.messages !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['conversation_id'], message: 'goes with prompt, not messages: with conversation_id the gateway keeps the history, so send only the new prompt' });
      return;
    }
    if (body.messages !== undefined) return;
    if (body.prompt === undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'is required (a non-empty string), or send messages' });
    else if (body.prompt.trim() === '') ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'is empty' });
  });

export type ApiChatBody = z.infer<typeof apiChatBody>;

export interface UpstreamChatRequest {
  /** Path below the upstream base URL. */
  path: '/chat/completions' | '/completions';
  kind: 'chat' | 'completion';
  model: string;
  body: Record<string, unknown>;
}

export interface PersonaSetting {
  text: string;
  mode: PersonaMode;
}

/**
 * What /api/chat sends upstream: the persona as system message, every configured sampling
 * parameter (the seed forgot temperature), per-request overrides on top. Legacy models go to
 * /completions with persona and prompt joined by a newline; `history` (a conversation's earlier
 * turns) goes between the persona and the prompt, as messages or, for /completions, as
 * `role: content` lines; reasoning models get
 * max_completion_tokens and none of the sampling parameters they reject.
 */
export function buildUpstreamChat(body: ApiChatBody, defaults: ChatDefaults, persona: PersonaSetting, model: string, history: readonly ChatMessage[] = []): UpstreamChatRequest {
  const maxTokens = body.max_tokens ?? defaults.maxTokens;
  const sampling = {
    temperature: body.temperature ?? defaults.temperature,
    top_p: body.top_p ?? defaults.topP,
    frequency_penalty: body.frequency_penalty ?? defaults.frequencyPenalty,
    presence_penalty: body.presence_penalty ?? defaults.presencePenalty,
  };
  const stream = body.stream === true ? { stream: true, stream_options: { include_usage: true } } : {};

  if (isCompletionOnlyModel(model)) {
    // A conversation's history is folded into the text the way messages are (role: content lines).
    const prompt = history.length > 0 ? flattenMessages([...history, { role: 'user', content: body.prompt }]) : (body.prompt ?? flattenMessages(body.messages ?? []));
    const text = persona.mode !== 'off' && persona.text !== '' ? `${persona.text}\n${prompt}` : prompt;
    return { path: '/completions', kind: 'completion', model, body: { model, prompt: text, max_tokens: maxTokens, ...sampling, ...stream } };
  }

  const conversation: ChatMessage[] = body.messages ?? [...history, { role: 'user', content: body.prompt }];
  const messages = applyPersona(conversation, persona.text, persona.mode);
  const limits = isReasoningModel(model) ? { max_completion_tokens: maxTokens } : { max_tokens: maxTokens, ...sampling };
  return { path: '/chat/completions', kind: 'chat', model, body: { model, messages, ...limits, ...stream } };
}

/** A chat history as plain text, for completion-only models. */
function flattenMessages(messages: readonly ChatMessage[]): string {
  return messages.map((m) => `${m.role}: ${typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? '')}`).join('\n');
}
