import { z } from 'zod';

const positiveInt = z.number().int().positive();
const origins = z.union([z.string(), z.array(z.string())]).transform((value) =>
  (Array.isArray(value) ? value : value.split(',')).map((item) => item.trim()).filter((item) => item.length > 0),
);
const isoDate = z.string().refine((value) => !Number.isNaN(Date.parse(value)), { message: 'must be an ISO-8601 date such as "2027-01-31T00:00:00Z"' });

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
    budget_period: z.enum(['day', 'month', 'total']).optional(),
    expires_at: isoDate.optional(),
    enabled: z.boolean().optional(),
    bot_desc: z.string().optional(),
    persona_mode: z.enum(['prepend', 'replace', 'off']).optional(),
    defaults: keyDefaultsSchema.optional(),
    max_tokens_ceiling: positiveInt.optional(),
    allow_origin: origins.optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
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
