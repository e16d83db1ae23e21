import { useEffect, useState } from 'preact/hooks';
import { api, usage, type AppKey, type UsageRow } from '../api';
import { number, periodStart, usd } from '../format';
import { useT } from '../i18n';

interface Form {
  name: string;
  models: string;
  rpm: string;
  tpm: string;
  rpd: string;
  budget_tokens: string;
  budget_usd: string;
  budget_period: string;
}

const EMPTY: Form = { name: '', models: '', rpm: '', tpm: '', rpd: '', budget_tokens: '', budget_usd: '', budget_period: '' };

/** The attributes a form sets; a blank field leaves the attribute as it is. */
function attributes(form: Form): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const models = form.models.split(',').map((m) => m.trim()).filter((m) => m.length > 0);
  if (models.length > 0) out.models = models;
  for (const field of ['rpm', 'tpm', 'rpd', 'budget_tokens'] as const) if (form[field] !== '') out[field] = Number.parseInt(form[field], 10);
  if (form.budget_usd !== '') out.budget_usd = Number(form.budget_usd);
  if (form.budget_period !== '') out.budget_period = form.budget_period;
  return out;
}

function KeyForm({ initial, withName, onSubmit, onCancel }: { initial: Form; withName: boolean; onSubmit: (form: Form) => Promise<void>; onCancel?: () => void }) {
  const t = useT();
  const [form, setForm] = useState(initial);
  const [error, setError] = useState('');
  const field = (name: keyof Form, label: string, numeric = false, placeholder = '') => {
    const onInput = (e: Event) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value });
    return (
      <label>
        {label}
        {numeric ? <input name={name} type="number" min="0" step="any" value={form[name]} onInput={onInput} /> : <input name={name} type="text" value={form[name]} placeholder={placeholder} onInput={onInput} />}
      </label>
    );
  };
  return (
    <form
      class="key-form"
      onSubmit={(e) => {
        e.preventDefault();
        setError('');
        onSubmit(form).then(() => withName && setForm(initial), (err: Error) => setError(err.message));
      }}
    >
      {withName && field('name', t('name'))}
      {field('models', t('models'), false, t('modelsHint'))}
      {field('rpm', 'rpm', true)}
      {field('tpm', 'tpm', true)}
      {field('rpd', 'rpd', true)}
      {field('budget_tokens', `${t('budget')} (${t('tokens')})`, true)}
      {field('budget_usd', `${t('budget')} (USD)`, true)}
      <label>
        {t('period')}
        <select name="budget_period" value={form.budget_period} onChange={(e) => setForm({ ...form, budget_period: (e.target as HTMLSelectElement).value })}>
          <option value="">—</option>
          <option value="day">day</option>
          <option value="month">month</option>
          <option value="total">total</option>
        </select>
      </label>
      <div class="actions">
        <button type="submit" class="primary">{withName ? t('create') : t('save')}</button>
        {onCancel && <button type="button" onClick={onCancel}>{t('cancel')}</button>}
      </div>
      {error && <p class="error">{error}</p>}
    </form>
  );
}

function Secret({ secret, onDone }: { secret: string; onDone: () => void }) {
  const t = useT();
  const [copied, setCopied] = useState(false);
  return (
    <div class="card secret" role="alert">
      <p>{t('created')}</p>
      <code data-secret>{secret}</code>
      <div class="actions">
        <button onClick={() => navigator.clipboard.writeText(secret).then(() => setCopied(true), () => setCopied(false))}>{copied ? t('copied') : t('copy')}</button>
        <button onClick={onDone}>{t('done')}</button>
      </div>
    </div>
  );
}

const limitsOf = (key: AppKey): string => [key.rpm && `${key.rpm} rpm`, key.tpm && `${key.tpm} tpm`, key.rpd && `${key.rpd} rpd`].filter(Boolean).join(' · ') || '—';

export function Keys() {
  const t = useT();
  const [keys, setKeys] = useState<AppKey[]>([]);
  const [today, setToday] = useState<Map<string, UsageRow>>(new Map());
  const [month, setMonth] = useState<Map<string, UsageRow>>(new Map());
  const [total, setTotal] = useState<Map<string, UsageRow>>(new Map());
  const [editing, setEditing] = useState<string | undefined>();
  const [secret, setSecret] = useState<string | undefined>();
  const [error, setError] = useState('');
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);

  useEffect(() => {
    const byName = (rows: UsageRow[]) => new Map(rows.map((row) => [row.group, row]));
    Promise.all([api.get<{ data: AppKey[] }>('/admin/keys'), usage({ by: 'key', since: periodStart('day') }), usage({ by: 'key', since: periodStart('month') }), usage({ by: 'key' })])
      .then(([list, d, m, all]) => {
        setKeys(list.data);
        setToday(byName(d));
        setMonth(byName(m));
        setTotal(byName(all));
      })
      .catch((e: Error) => setError(e.message));
  }, [version]);

  const act = (work: Promise<unknown>) => work.then(reload, (e: Error) => setError(e.message));
  const spent = (key: AppKey): string => {
    if (key.budget_tokens === null && key.budget_usd === null) return '—';
    const row = (key.budget_period === 'day' ? today : key.budget_period === 'month' ? month : total).get(key.name);
    const parts: string[] = [];
    if (key.budget_tokens !== null) parts.push(`${number(row?.totalTokens ?? 0)} / ${number(key.budget_tokens)}`);
    if (key.budget_usd !== null) parts.push(`${usd(row?.costUsd ?? 0)} / ${usd(key.budget_usd)}`);
    return `${parts.join(' · ')} (${key.budget_period ?? 'total'})`;
  };

  return (
    <div>
      {error && <p class="error">{error}</p>}
      {secret !== undefined && <Secret secret={secret} onDone={() => setSecret(undefined)} />}
      <details class="card">
        <summary>{t('create')}</summary>
        <KeyForm
          initial={EMPTY}
          withName
          onSubmit={async (form) => {
            const created = await api.post<{ key: string }>('/admin/keys', { name: form.name, ...attributes(form) });
            setSecret(created.key);
            reload();
          }}
        />
      </details>
      <div class="table-wrap">
        <table class="keys">
          <thead>
            <tr>
              <th>{t('name')}</th>
              <th>{t('status')}</th>
              <th>{t('models')}</th>
              <th>{t('limits')}</th>
              <th>{t('today')}</th>
              <th>{t('budget')}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.map((key) => (
              <tr key={key.name} data-key={key.name}>
                <td>
                  <strong>{key.name}</strong>
                  <div class="muted">{key.prefix}…</div>
                </td>
                <td>
                  <span class={key.enabled ? 'badge ok' : 'badge off'}>{key.enabled ? t('enabled') : t('disabled')}</span>
                </td>
                <td>{key.models?.join(', ') || '*'}</td>
                <td>{limitsOf(key)}</td>
                <td class="num">
                  {number(today.get(key.name)?.requests ?? 0)}
                  {key.rpd !== null && ` / ${number(key.rpd)}`}
                </td>
                <td>{spent(key)}</td>
                <td class="actions">
                  {key.source === 'config' ? (
                    <span class="muted">{t('fromConfig')}</span>
                  ) : (
                    <>
                      <button onClick={() => setEditing(editing === key.name ? undefined : key.name)}>{t('edit')}</button>
                      <button onClick={() => act(api.post(`/admin/keys/${encodeURIComponent(key.name)}/${key.enabled ? 'disable' : 'enable'}`))}>{key.enabled ? t('disable') : t('enable')}</button>
                      <button class="danger" onClick={() => window.confirm(t('confirmDelete', { name: key.name })) && act(api.del(`/admin/keys/${encodeURIComponent(key.name)}`))}>
                        {t('delete')}
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {keys.length === 0 && <p class="muted">{t('noData')}</p>}
      {editing !== undefined && (
        <section class="card">
          <h3>
            {t('edit')}: {editing}
          </h3>
          <KeyForm
            key={editing}
            initial={(() => {
              const key = keys.find((k) => k.name === editing);
              const text = (value: number | null | undefined) => (value === null || value === undefined ? '' : String(value));
              return { name: editing, models: key?.models?.join(', ') ?? '', rpm: text(key?.rpm), tpm: text(key?.tpm), rpd: text(key?.rpd), budget_tokens: text(key?.budget_tokens), budget_usd: text(key?.budget_usd), budget_period: key?.budget_period ?? '' };
            })()}
            withName={false}
            onSubmit={async (form) => {
              await api.patch(`/admin/keys/${encodeURIComponent(editing)}`, attributes(form));
              setEditing(undefined);
              reload();
            }}
            onCancel={() => setEditing(undefined)}
          />
        </section>
      )}
    </div>
  );
}
