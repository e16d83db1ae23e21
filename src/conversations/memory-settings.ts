import type { KeyMemory } from '../auth/app-key.js';
import type { MemorySettings } from '../domain/conversation.js';

/** The owner's memory settings (config.json) with the key's own over them, where it sets one. */
export function memorySettings(owner: MemorySettings, key: KeyMemory | undefined): MemorySettings {
  if (key === undefined) return owner;
  return {
    enabled: key.enabled ?? owner.enabled,
    maxTokens: key.maxTokens ?? owner.maxTokens,
    maxTurns: key.maxTurns ?? owner.maxTurns,
    ttlSeconds: key.ttlSeconds ?? owner.ttlSeconds,
  };
}
