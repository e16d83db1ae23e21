import { z } from 'zod';
import { BUDGET_PERIODS, PERSONA_MODES } from '../domain/key-settings.js';
import { MEMORY_BOUNDS } from '../domain/conversation.js';

const positiveInt = z.number().int().positive();
const origins = z.union([z.string(), z.array(z.string())]).transform((value) =>
  (Array.isArray(value) ? value : value.split(',')).map((item) => item.trim()).filter((item) => item.length > 0),
);
const isoDate = z.string().refine((value) => !Number.isNaN(Date.parse(value)), { message: 'must be an ISO-8601 date such as "2027-01-31T00:00:00Z"' });

/** The methods an endpoint grant may name; `*` stands for any of them. */
export const ENDPOINT_GRANT_METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', '*'];
export const MAX_ENDPOINT_GRANTS = 64;
export const MAX_ENDPOINT_GRANT_LENGTH = 256;

/**
 * Why `grant` is not an endpoint grant ("METHOD /v1/path", `*` in the path for any run of
 * characters), or undefined when it is one. Grants are matched against the gateway's canonical
 * path — decoded, `//` collapsed, no dot segments, no query — so anything that could never
 * appear there (`%`, `?`, `#`, `\`, `..`, `//`, spaces, non-ASCII) is refused rather than
 * left to grant nothing.
 */
export function endpointGrantProblem(grant: string): string | undefined {
  if (grant.length > MAX_ENDPOINT_GRANT_LENGTH) return `longer than ${MAX_ENDPOINT_GRANT_LENGTH} characters`;
  const space = grant.indexOf(' ');
  if (space < 0) return 'expected a method, one space and a path, e.g. "POST /v1/fine_tuning/jobs"';
  const method = grant.slice(0, space);
  const path = grant.slice(space + 1);
  if (!ENDPOINT_GRANT_METHODS.includes(method)) return `method ${JSON.stringify(method)} is not one of GET, POST, PUT, PATCH, DELETE or *`;
  if (path.startsWith(' ')) return 'more than one space between the method and the path';
  if (!path.startsWith('/v1/')) return `path ${JSON.stringify(path)} does not start with /v1/`;
  const bad = /[^\x21-\x7e]|[?#%\\]/.exec(path);
  if (bad !== null) {
    const what = bad[0] === ' ' ? 'a space' : JSON.stringify(bad[0]);
    return `path ${JSON.stringify(path)} contains ${what}: a path is printable ASCII without spaces, "?", "#", "%" or "\\"`;
  }
  if (path.includes('..')) return `path ${JSON.stringify(path)} contains "..": dot segments are not allowed`;
  if (path.includes('//')) return `path ${JSON.stringify(path)} contains "//", which never matches (the gateway collapses empty segments)`;
  return undefined;
}

const endpointGrant = z.string().superRefine((grant, context) => {
  const problem = endpointGrantProblem(grant);
  if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
});
const endpointGrants = z.array(endpointGrant).max(MAX_ENDPOINT_GRANTS, { message: `more than ${MAX_ENDPOINT_GRANTS} grants` });

/** Per-key defaults: OpenAI request field names, applied where the caller leaves them out. */
export const keyDefaultsSchema = z
  .object({
    model: z.string().min(1).optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    max_tokens: positiveInt.optional(),
    frequency_penalty: z.number().min(-2).max(2).optional(),
    presence_penalty: z.number().min(-2).max(2).optional(),
  })
  .strict();

/** The attributes of an app key shared by config.json, the CLI and the admin API (snake_case, as users write them). */
export const keyAttributesSchema = z
  .object({
    models: z.array(z.string().min(1)).optional(),
    rpm: positiveInt.optional(),
    tpm: positiveInt.optional(),
    rpd: positiveInt.optional(),
    budget_tokens: positiveInt.optional(),
    budget_usd: z.number().positive().optional(),
    budget_period: z.enum(BUDGET_PERIODS).optional(),
    expires_at: isoDate.optional(),
    enabled: z.boolean().optional(),
    bot_desc: z.string().optional(),
    persona_mode: z.enum(PERSONA_MODES).optional(),
    defaults: keyDefaultsSchema.optional(),
    max_tokens_ceiling: positiveInt.optional(),
    allow_origin: origins.optional(),
    /** Endpoints beyond the defaults, granted at the owner's risk: "POST /v1/fine_tuning/jobs", "* /v1/evals*". */
    endpoints: endpointGrants.optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    /** Conversations of /api/chat (issue 16); unset takes the owner's memory settings. */
    memory: z.boolean().optional(),
    memory_max_tokens: positiveInt.max(MEMORY_BOUNDS.maxTokens).optional(),
    memory_max_turns: positiveInt.max(MEMORY_BOUNDS.maxTurns).optional(),
    memory_ttl: positiveInt.max(MEMORY_BOUNDS.ttlSeconds).optional(),
    /** The response cache: seconds an answer is kept (0 = off for this key); unset takes the owner's cache_ttl. */
    cache_ttl: z.number().int().min(0).max(31_536_000).optional(),
    /** Keys with the same cache_group share cached answers (the owner's choice); unset keeps them the key's own. */
    cache_group: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit' }).optional(),
  })
  .strict();

export const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const keyNameSchema = z.string().regex(KEY_NAME, { message: 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit' });

/** One entry of the `keys` array in config.json. */
export const keyEntrySchema = keyAttributesSchema
  .extend({
    name: keyNameSchema,
    key: z.string().min(16, { message: 'must be at least 16 characters (generate one with `openai-api keys create`)' }).optional(),
    key_env: z.string().min(1).optional(),
  })
  .strict()
  .refine((entry) => (entry.key === undefined) !== (entry.key_env === undefined), { message: 'needs exactly one of "key" or "key_env"' });

export type KeyAttributes = z.infer<typeof keyAttributesSchema>;
export type KeyEntry = z.infer<typeof keyEntrySchema>;
