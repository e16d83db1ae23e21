import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, usage, type AppKey, type StatusAnswer, type UsageFilter, type UsageRow } from '../api';
import { Chart } from '../chart';
import { everyDay, groupSeconds, number, toCsv, usd, zeroRow } from '../format';
import { useT } from '../i18n';

const isoDay = (date: Date): string => date.toISOString().slice(0, 10);

export function Usage() {
  const t = useT();
  const [keys, setKeys] = useState<string[]>([]);
  const [key, setKey] = useState('');
  const [upstreams, setUpstreams] = useState<string[]>([]);
  const [upstream, setUpstream] = useState('');
  const [model, setModel] = useState('');
  const [since, setSince] = useState(isoDay(new Date(Date.now() - 29 * 86_400_000)));
  const [until, setUntil] = useState(isoDay(new Date()));
  const [by, setBy] = useState<UsageFilter['by']>('model');
  const [rows, setRows] = useState<UsageRow[]>([]);
  const [days, setDays] = useState<UsageRow[]>([]);
  const [error, setError] = useState('');
  const [version, setVersion] = useState(0);

  useEffect(() => {
    api.get<{ data: AppKey[] }>('/admin/keys').then((list) => setKeys(list.data.map((k) => k.name)), () => undefined);
    api.get<StatusAnswer>('/admin/status').then((status) => setUpstreams(status.upstreams.map((u) => u.name)), () => undefined);
  }, []);
  useEffect(() => {
    // Dates are UTC days, `until` inclusive (the API's until is exclusive).
    const filter = { key: key || undefined, upstream: upstream || undefined, since: new Date(`${since}T00:00:00Z`), until: new Date(Date.parse(`${until}T00:00:00Z`) + 86_400_000) };
    Promise.all([usage({ ...filter, by }), usage({ ...filter, by: 'day' })])
      .then(([grouped, daily]) => {
        setRows(grouped);
        setDays(everyDay(daily, filter.since, new Date(filter.until.getTime() - 1), zeroRow));
        setError('');
      })
      .catch((e: Error) => setError(e.message));
  }, [key, upstream, since, until, by, version]);

  // The usage report groups by one dimension: the model filter narrows the rows grouped by model.
  const shown = by === 'model' && model !== '' ? rows.filter((row) => row.group.includes(model)) : rows;
  const series = useMemo(
    () => [
      { label: t('tokens'), values: days.map((r) => r.totalTokens), color: '#16a34a' },
      { label: t('requests'), values: days.map((r) => r.requests), color: '#2563eb', right: true },
    ],
    [days, t('tokens')],
  );
  const x = useMemo(() => days.map((r) => groupSeconds(r.group)), [days]);

  const exportCsv = () => {
    const csv = toCsv(shown.map((row) => ({ [by]: row.group, requests: row.requests, prompt_tokens: row.promptTokens, completion_tokens: row.completionTokens, cached_tokens: row.cachedTokens, reasoning_tokens: row.reasoningTokens, total_tokens: row.totalTokens, cost_usd: row.costUsd, errors: row.errors })));
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
    link.download = `usage-${by}-${since}-${until}.csv`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  };

  return (
    <div>
      <form class="filters" onSubmit={(e) => (e.preventDefault(), setVersion((v) => v + 1))}>
        <label>
          {t('key')}
          <select name="key" value={key} onChange={(e) => setKey((e.target as HTMLSelectElement).value)}>
            <option value="">{t('all')}</option>
            {keys.map((name) => (
              <option key={name} value={name}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          {t('upstream')}
          <select name="upstream" value={upstream} onChange={(e) => setUpstream((e.target as HTMLSelectElement).value)}>
            <option value="">{t('all')}</option>
            {upstreams.map((name) => (
              <option key={name} value={name}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          {t('model')}
          <input name="model" value={model} disabled={by !== 'model'} onInput={(e) => setModel((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t('since')}
          <input name="since" type="date" value={since} onChange={(e) => setSince((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t('until')}
          <input name="until" type="date" value={until} onChange={(e) => setUntil((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t('groupBy')}
          <select name="by" value={by} onChange={(e) => setBy((e.target as HTMLSelectElement).value as UsageFilter['by'])}>
            <option value="model">{t('model')}</option>
            <option value="key">{t('key')}</option>
            <option value="upstream">{t('upstream')}</option>
            <option value="day">{t('day')}</option>
            <option value="hour">{t('hour')}</option>
          </select>
        </label>
        <div class="actions">
          <button type="submit">{t('refresh')}</button>
          <button type="button" onClick={exportCsv} disabled={shown.length === 0}>{t('exportCsv')}</button>
        </div>
      </form>
      {error && <p class="error">{error}</p>}
      <section class="card">{days.length === 0 ? <p class="muted">{t('noData')}</p> : <Chart x={x} series={series} />}</section>
      <div class="table-wrap">
        <table class="usage">
          <thead>
            <tr>
              <th>{t(by)}</th>
              <th class="num">{t('requests')}</th>
              <th class="num">{t('prompt')}</th>
              <th class="num">{t('completion')}</th>
              <th class="num">{t('cached')}</th>
              <th class="num">{t('tokens')}</th>
              <th class="num">{t('cost')}</th>
              <th class="num">{t('errors')}</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((row) => (
              <tr key={row.group} data-group={row.group}>
                <td>{row.group}</td>
                <td class="num">{number(row.requests)}</td>
                <td class="num">{number(row.promptTokens)}</td>
                <td class="num">{number(row.completionTokens)}</td>
                <td class="num">{number(row.cachedTokens)}</td>
                <td class="num" data-col="total">{number(row.totalTokens)}</td>
                <td class="num">{usd(row.costUsd)}</td>
                <td class="num">{number(row.errors)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
