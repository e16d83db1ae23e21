import type { ObjectKind } from '../policy/endpoints.js';
import type { Reference } from './references.js';

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);
const isId = (value: unknown): value is string => typeof value === 'string' && value !== '' && value.length <= 256;

/**
 * The objects a JSON answer hands to the caller: the one the request created (`creates`), and
 * files an object of the caller's produced — a batch's output and error files, a completed
 * upload's file, a fine-tuning job's result files. A run created with its thread
 * (`POST /threads/runs`) names the new thread as `thread_id`.
 */
export function objectsInAnswer(answer: unknown, creates: ObjectKind | undefined): Reference[] {
  if (!isObject(answer)) return [];
  const out: Reference[] = [];
  if (creates !== undefined) {
    if (creates === 'thread' && answer.object === 'thread.run') {
      if (isId(answer.thread_id)) out.push({ kind: 'thread', id: answer.thread_id });
    } else if (isId(answer.id)) {
      out.push({ kind: creates, id: answer.id });
    }
  }
  for (const field of ['output_file_id', 'error_file_id'] as const) {
    if (isId(answer[field])) out.push({ kind: 'file', id: answer[field] });
  }
  if (answer.object === 'upload' && isObject(answer.file) && isId(answer.file.id)) out.push({ kind: 'file', id: answer.file.id });
  if (Array.isArray(answer.result_files)) for (const id of answer.result_files) if (isId(id)) out.push({ kind: 'file', id });
  return out;
}

/** A list page as OpenAI sends it (`{"object":"list","data":[…],"first_id","last_id","has_more"}`). */
export interface ListPage {
  data: Json[];
  hasMore: boolean;
  /** The id to continue after: the page's last item. */
  lastId: string | undefined;
  /** The page's other fields (`object`, …), kept in the answer. */
  rest: Json;
}

export function parseListPage(answer: unknown): ListPage | undefined {
  if (!isObject(answer) || !Array.isArray(answer.data)) return undefined;
  const data = answer.data.filter(isObject);
  const last = data.at(-1);
  const { data: _data, has_more: hasMore, first_id: _first, last_id: _last, ...rest } = answer;
  return { data, hasMore: hasMore === true, lastId: last !== undefined && isId(last.id) ? last.id : undefined, rest };
}

/** The ids of a page's items, in order. */
export function idsOf(page: ListPage): string[] {
  return page.data.map((item) => item.id).filter(isId);
}
