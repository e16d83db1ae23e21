import { useEffect, useState } from 'preact/hooks';
import { api, usage, type AppKey, type IssuedKey, type UsageRow } from '../api';
import { number, periodStart, usd } from '../format';
import { useT } from '../i18n';
import { attributes, EMPTY, formOf, KeyForm } from './key-form';

/** A secret just issued (created or rotated), shown this once. */
interface Issued {
  name: string;
  secret: string;
  rotated: boolean;
}

function Secret({ issued, onDone }: { issued: Issued; onDone: () => void }) {
  const t = useT();
  const [copied, setCopied] = useState(false);
  const secret = issued.secret;
  return (
    <div class="card secret" role="alert" data-issued={issued.name}>
      <p>
        <strong>{issued.name}</strong>: {issued.rotated ? t('rotated') : t('created')}
      </p>
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
  const [issued, setIssued] = useState<Issued | undefined>();
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

  const editingKey = keys.find((key) => key.name === editing);
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
      {issued !== undefined && <Secret issued={issued} onDone={() => setIssued(undefined)} />}
      <details class="card">
        <summary>{t('create')}</summary>
        <KeyForm
          initial={EMPTY}
          onSubmit={async (form) => {
            const created = await api.post<IssuedKey>('/admin/keys', { name: form.name, ...attributes(form, undefined) });
            setIssued({ name: created.name, secret: created.key, rotated: false });
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
                      <button
                        onClick={() =>
                          window.confirm(t('confirmRotate', { name: key.name })) &&
                          act(api.post<IssuedKey>(`/admin/keys/${encodeURIComponent(key.name)}/rotate`).then((rotated) => setIssued({ name: rotated.name, secret: rotated.key, rotated: true })))
                        }
                      >
                        {t('rotate')}
                      </button>
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
      {editingKey !== undefined && (
        <section class="card" data-editing={editingKey.name}>
          <h3>
            {t('edit')}: {editingKey.name}
          </h3>
          <KeyForm
            key={editingKey.name}
            initial={formOf(editingKey)}
            editing={editingKey}
            onSubmit={async (form) => {
              await api.patch(`/admin/keys/${encodeURIComponent(editingKey.name)}`, attributes(form, editingKey));
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
