import type { ObjectKind } from '../policy/endpoints.js';

/** Body fields that name another object, and the kind they name. */
const REFERENCE_FIELDS: Readonly<Record<string, ObjectKind>> = {
  previous_response_id: 'response',
  conversation: 'conversation',
  input_file_id: 'file',
  file_id: 'file',
  file_ids: 'file',
  training_file: 'file',
  validation_file: 'file',
  vector_store_ids: 'vector_store',
  assistant_id: 'assistant',
  thread_id: 'thread',
  container: 'container',
};

export interface Reference {
  kind: ObjectKind;
  id: string;
}

/**
 * Free-form maps the caller fills as it likes and the API never resolves ids from: Codex sends
 * `client_metadata.thread_id` (its own session id), which is no Assistants thread.
 */
const OPAQUE_FIELDS = new Set(['metadata', 'client_metadata']);

/** Deeper than any real request body; JSON depth is already capped at 256 before this runs. */
const MAX_DEPTH = 64;

function addIds(out: Reference[], kind: ObjectKind, value: unknown): void {
  if (typeof value === 'string') {
    if (value !== '') out.push({ kind, id: value });
  } else if (Array.isArray(value)) {
    for (const item of value) if (typeof item === 'string' && item !== '') out.push({ kind, id: item });
  } else if (value !== null && typeof value === 'object' && (kind === 'conversation' || kind === 'container')) {
    // `conversation: {"id": "conv_…"}`; a container may also be `{"type": "auto", "file_ids": […]}` (walked as usual).
    const id = (value as { id?: unknown }).id;
    if (typeof id === 'string' && id !== '') out.push({ kind, id });
  }
}

function walk(value: unknown, out: Reference[], depth: number): void {
  if (depth > MAX_DEPTH || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const item of value) walk(item, out, depth + 1);
    return;
  }
  for (const field in value as Record<string, unknown>) {
    if (OPAQUE_FIELDS.has(field)) continue;
    const child = (value as Record<string, unknown>)[field];
    const kind = Object.hasOwn(REFERENCE_FIELDS, field) ? REFERENCE_FIELDS[field] : undefined;
    if (kind !== undefined) addIds(out, kind, child);
    walk(child, out, depth + 1);
  }
}

/**
 * Every object a request body names — `previous_response_id`, `input_file_id`, `file_ids`,
 * `vector_store_ids`, a `conversation`, a tool's `container`… at any depth (a file part inside a
 * chat message, a file search tool inside a Responses request). Each must be the caller's own.
 */
export function objectReferences(body: unknown): Reference[] {
  const out: Reference[] = [];
  walk(body, out, 0);
  return out;
}
