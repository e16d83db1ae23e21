import type { Dispatcher } from 'undici';
import type { Caller } from '../auth/authenticator.js';
import { GatewayError } from '../errors/index.js';
import { idsOf, parseListPage, type ListPage } from '../ownership/answers.js';
import type { Ownership } from '../ownership/ownership.js';
import type { ObjectKind } from '../policy/endpoints.js';

type ResponseBody = Dispatcher.ResponseData['body'];

/** Upstream pages read for one filtered answer; each holds up to 100 objects. */
const MAX_PAGES = 20;
/** A list page larger than this is not one OpenAI sends. */
const MAX_PAGE_BYTES = 16 * 1024 * 1024;
/** The upstream's default page size where the caller gives none (files list up to 10,000 at once). */
const DEFAULT_LIMIT: Partial<Record<ObjectKind, number>> = { file: 10_000 };
const MAX_LIMIT: Partial<Record<ObjectKind, number>> = { file: 10_000 };

export interface OwnedListRequest {
  caller: Caller;
  kind: ObjectKind;
  /** The caller's query (`?limit=…&after=…&order=…`). */
  query: string;
  /** The first upstream page, already requested with `limit=100`. */
  first: ResponseBody;
  ownership: Ownership;
  failure: (error: unknown) => GatewayError;
  /** The next upstream page after an id. */
  next: (after: string) => Promise<Dispatcher.ResponseData>;
}

async function readPage(body: ResponseBody, failure: (error: unknown) => GatewayError): Promise<ListPage> {
  let text = '';
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > MAX_PAGE_BYTES) {
        body.destroy();
        throw new GatewayError('upstream_error', 'The upstream sent a list page too large to filter.');
      }
      text += (chunk as Buffer).toString('utf8');
    }
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw failure(error);
  }
  let page: ListPage | undefined;
  try {
    page = parseListPage(JSON.parse(text));
  } catch {
    page = undefined;
  }
  if (page === undefined) throw new GatewayError('upstream_error', 'The upstream answered a list request with something that is not a list.');
  return page;
}

/**
 * A list answer holding only the caller's own objects. The upstream's pages (the largest it
 * gives) are read in order and filtered until the caller's `limit` is filled or the list ends,
 * up to 20 pages; `last_id` is the last object returned, so the SDKs' `after` cursor continues
 * right after it, and `has_more` says whether more may follow.
 */
export async function listOwnedObjects(request: OwnedListRequest): Promise<string> {
  const { caller, kind, ownership, failure } = request;
  const params = new URLSearchParams(request.query.startsWith('?') ? request.query.slice(1) : request.query);
  const asked = Number(params.get('limit'));
  const maxLimit = MAX_LIMIT[kind] ?? 100;
  const limit = Number.isInteger(asked) && asked > 0 ? Math.min(asked, maxLimit) : (DEFAULT_LIMIT[kind] ?? 20);

  const kept: Array<Record<string, unknown>> = [];
  let page = await readPage(request.first, failure);
  let rest = page.rest;
  let upstreamHasMore = page.hasMore;
  for (let pages = 1; ; pages++) {
    const owned = await ownership.ownedAmong(caller, kind, idsOf(page));
    for (const item of page.data) if (owned.has(item.id as string)) kept.push(item);
    upstreamHasMore = page.hasMore;
    if (kept.length > limit || !page.hasMore || page.lastId === undefined || pages >= MAX_PAGES) break;
    const response = await request.next(page.lastId).catch((error: unknown) => {
      throw error instanceof GatewayError ? error : failure(error);
    });
    if (response.statusCode !== 200) {
      await response.body.dump().catch(() => undefined);
      throw new GatewayError('upstream_error', `The upstream answered ${response.statusCode} while the gateway read the rest of the list.`);
    }
    page = await readPage(response.body, failure);
    rest = { ...rest, ...page.rest };
  }
  const data = kept.slice(0, limit);
  const first = data[0];
  const last = data.at(-1);
  return JSON.stringify({
    ...rest,
    object: 'list',
    data,
    first_id: first?.id ?? null,
    last_id: last?.id ?? null,
    has_more: kept.length > limit || upstreamHasMore,
  });
}
