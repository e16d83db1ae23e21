import type { InputHTMLAttributes } from 'preact';
import { useState } from 'preact/hooks';
import type { AppKey } from '../api';
import { useT } from '../i18n';

/** Every field of the key form, as typed (strings); '' is "not set". */
export interface Form {
  name: string;
  models: string;
  rpm: string;
  tpm: string;
  rpd: string;
  budget_tokens: string;
  budget_usd: string;
  budget_period: string;
  expires_at: string;
  bot_desc: string;
  persona_mode: string;
  max_tokens_ceiling: string;
  d_model: string;
  d_temperature: string;
  d_top_p: string;
  d_max_tokens: string;
  /** '' (the gateway's setting), 'on' or 'off'. */
  memory: string;
  memory_max_tokens: string;
  memory_max_turns: string;
  memory_ttl: string;
  cache_ttl: string;
  cache_group: string;
}

export const EMPTY: Form = {
  name: '', models: '', rpm: '', tpm: '', rpd: '', budget_tokens: '', budget_usd: '', budget_period: '', expires_at: '',
  bot_desc: '', persona_mode: '', max_tokens_ceiling: '', d_model: '', d_temperature: '', d_top_p: '', d_max_tokens: '',
  memory: '', memory_max_tokens: '', memory_max_turns: '', memory_ttl: '', cache_ttl: '', cache_group: '',
};

const INTEGERS = ['rpm', 'tpm', 'rpd', 'budget_tokens', 'max_tokens_ceiling', 'memory_max_tokens', 'memory_max_turns', 'memory_ttl', 'cache_ttl'] as const;
const TEXTS = ['budget_period', 'bot_desc', 'persona_mode', 'cache_group'] as const;

/** `2027-01-31T12:00:00.000Z` → the `datetime-local` value of that moment in the browser's time zone. */
const localInput = (iso: string): string => {
  const at = new Date(iso);
  return new Date(at.getTime() - at.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};
const text = (value: number | string | null | undefined): string => (value === null || value === undefined ? '' : String(value));

/** A key's current settings as the form shows them. */
export function formOf(key: AppKey): Form {
  return {
    name: key.name,
    models: key.models?.join(', ') ?? '',
    rpm: text(key.rpm),
    tpm: text(key.tpm),
    rpd: text(key.rpd),
    budget_tokens: text(key.budget_tokens),
    budget_usd: text(key.budget_usd),
    budget_period: key.budget_period ?? '',
    expires_at: key.expires_at === null ? '' : localInput(key.expires_at),
    bot_desc: key.bot_desc ?? '',
    persona_mode: key.persona_mode ?? '',
    max_tokens_ceiling: text(key.max_tokens_ceiling),
    d_model: key.defaults?.model ?? '',
    d_temperature: text(key.defaults?.temperature),
    d_top_p: text(key.defaults?.top_p),
    d_max_tokens: text(key.defaults?.max_tokens),
    memory: key.memory === null ? '' : key.memory ? 'on' : 'off',
    memory_max_tokens: text(key.memory_max_tokens),
    memory_max_turns: text(key.memory_max_turns),
    memory_ttl: text(key.memory_ttl),
    cache_ttl: text(key.cache_ttl),
    cache_group: key.cache_group ?? '',
  };
}

/**
 * The admin API body a form sends. Creating, a blank field is left out; editing, a blank field is
 * sent as null, which clears the setting (PATCH /admin/keys/NAME). Defaults are one object:
 * other defaults the key has (set with the CLI or API) are kept as they were.
 */
export function attributes(form: Form, editing: AppKey | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const blank = (name: string) => {
    if (editing) out[name] = null;
  };
  const models = form.models.split(',').map((m) => m.trim()).filter((m) => m.length > 0);
  if (models.length > 0) out.models = models;
  else blank('models');
  for (const field of INTEGERS) {
    if (form[field] !== '') out[field] = Number.parseInt(form[field], 10);
    else blank(field);
  }
  if (form.budget_usd !== '') out.budget_usd = Number(form.budget_usd);
  else blank('budget_usd');
  for (const field of TEXTS) {
    if (form[field] !== '') out[field] = form[field];
    else blank(field);
  }
  if (form.memory !== '') out.memory = form.memory === 'on';
  else blank('memory');
  if (form.expires_at !== '') out.expires_at = new Date(form.expires_at).toISOString();
  else blank('expires_at');
  const defaults: Record<string, unknown> = { ...(editing?.defaults ?? {}) };
  const setDefault = (name: string, value: string, parse: (v: string) => unknown) => {
    if (value === '') delete defaults[name];
    else defaults[name] = parse(value);
  };
  setDefault('model', form.d_model.trim(), (v) => v);
  setDefault('temperature', form.d_temperature, Number);
  setDefault('top_p', form.d_top_p, Number);
  setDefault('max_tokens', form.d_max_tokens, (v) => Number.parseInt(v, 10));
  if (Object.keys(defaults).length > 0) out.defaults = defaults;
  else blank('defaults');
  return out;
}

export function KeyForm({ initial, editing, onSubmit, onCancel }: { initial: Form; editing?: AppKey; onSubmit: (form: Form) => Promise<void>; onCancel?: () => void }) {
  const t = useT();
  const [form, setForm] = useState(initial);
  const [error, setError] = useState('');
  const set = (name: keyof Form) => (e: Event) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value });
  const input = (name: keyof Form, label: string, type: 'text' | 'number' | 'datetime-local' = 'text', extra: Record<string, string> = {}) => (
    <label>
      {label}
      {/* Cast: Preact types each input `type` apart, and this one is chosen at run time. */}
      <input {...({ name, type, value: form[name], onInput: set(name), ...(type === 'number' ? { min: '0', step: 'any' } : {}), ...extra } as InputHTMLAttributes<HTMLInputElement>)} />
    </label>
  );
  const select = (name: keyof Form, label: string, options: readonly string[]) => (
    <label>
      {label}
      <select name={name} value={form[name]} onChange={set(name)}>
        <option value="">—</option>
        {options.map((option) => (
          <option key={option} value={option}>{option}</option>
        ))}
      </select>
    </label>
  );
  return (
    <form
      class="key-form"
      onSubmit={(e) => {
        e.preventDefault();
        setError('');
        onSubmit(form).then(() => !editing && setForm(initial), (err: Error) => setError(err.message));
      }}
    >
      {!editing && input('name', t('name'), 'text', { required: '' })}
      {input('models', t('models'), 'text', { placeholder: t('modelsHint') })}
      {input('rpm', 'rpm', 'number')}
      {input('tpm', 'tpm', 'number')}
      {input('rpd', 'rpd', 'number')}
      {input('budget_tokens', `${t('budget')} (${t('tokens')})`, 'number')}
      {input('budget_usd', `${t('budget')} (USD)`, 'number')}
      {select('budget_period', t('period'), ['day', 'month', 'total'])}
      {input('expires_at', t('expiresAt'), 'datetime-local')}
      <label class="wide">
        {t('botDesc')}
        <textarea name="bot_desc" rows={3} value={form.bot_desc} onInput={set('bot_desc')} />
      </label>
      {select('persona_mode', t('personaMode'), ['prepend', 'replace', 'off'])}
      {input('max_tokens_ceiling', t('ceiling'), 'number')}
      <fieldset class="wide group">
        <legend>{t('defaults')}</legend>
        {input('d_model', t('defaultModel'))}
        {input('d_temperature', 'temperature', 'number', { max: '2' })}
        {input('d_top_p', 'top_p', 'number', { max: '1' })}
        {input('d_max_tokens', 'max_tokens', 'number')}
      </fieldset>
      <fieldset class="wide group" data-group="memory">
        <legend>{t('memoryLegend')}</legend>
        {select('memory', t('memory'), ['on', 'off'])}
        {input('memory_max_tokens', t('memoryMaxTokens'), 'number')}
        {input('memory_max_turns', t('memoryMaxTurns'), 'number')}
        {input('memory_ttl', t('memoryTtl'), 'number')}
      </fieldset>
      <fieldset class="wide group" data-group="cache">
        <legend>{t('cacheLegend')}</legend>
        {input('cache_ttl', t('cacheTtl'), 'number')}
        {input('cache_group', t('cacheGroup'))}
      </fieldset>
      {editing && <p class="muted wide">{t('blankClears')}</p>}
      <div class="actions">
        <button type="submit" class="primary">{editing ? t('save') : t('create')}</button>
        {onCancel && <button type="button" onClick={onCancel}>{t('cancel')}</button>}
      </div>
      {error && <p class="error wide">{error}</p>}
    </form>
  );
}
