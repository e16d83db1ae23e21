import type { PersonaMode } from '../domain/key-settings.js';

export interface ChatMessage {
  role: string;
  content?: unknown;
  [field: string]: unknown;
}

/**
 * Puts the owner's persona into a conversation. `prepend` joins it before the caller's own
 * system message (or adds one), `replace` drops the caller's system messages for it, `off`
 * leaves the conversation as sent. Returns a new array; the caller's objects are not mutated.
 */
export function applyPersona(messages: readonly ChatMessage[], persona: string, mode: PersonaMode): ChatMessage[] {
  if (mode === 'off' || persona === '') return [...messages];
  if (mode === 'replace') {
    // /v1 bodies are relayed unvalidated: an entry may be null or a number, which the upstream will refuse, not us.
    const role = (message: ChatMessage | null): unknown => message?.role;
    return [{ role: 'system', content: persona }, ...messages.filter((message) => role(message) !== 'system' && role(message) !== 'developer')];
  }
  const first = messages[0];
  if (first && first.role === 'system' && typeof first.content === 'string') {
    return [{ ...first, content: `${persona}\n\n${first.content}` }, ...messages.slice(1)];
  }
  return [{ role: 'system', content: persona }, ...messages];
}
