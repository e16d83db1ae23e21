import { useEffect, useMemo, useState } from 'preact/hooks';
import { usage, type UsageRow } from '../api';
import { Chart } from '../chart';
import { everyDay, number, percent, usd, zeroRow } from '../format';
import { useT, type Key } from '../i18n';

const RANGES: Array<[Key, number]> = [
  ['lastHour', 60 * 60 * 1000],
  ['lastDay', 24 * 60 * 60 * 1000],
  ['last30', 30 * 24 * 60 * 60 * 1000],
];

const sum = (rows: UsageRow[], pick: (row: UsageRow) => number | null): number => rows.reduce((total, row) => total + (pick(row) ?? 0), 0);

function Top({ title, rows }: { title: string; rows: UsageRow[] }) {
  const t = useT();
  const top = [...rows].sort((a, b) => b.requests - a.requests).slice(0, 5);
  return (
    <section class="card">
      <h3>{title}</h3>
      {top.length === 0 ? (
        <p class="muted">{t('noData')}</p>
      ) : (
        <table>
          <tbody>
            {top.map((row) => (
              <tr key={row.group}>
                <td>{row.group}</td>
                <td class="num">{number(row.requests)}</td>
                <td class="num">{number(row.totalTokens)}</td>
                <td class="num">{usd(row.costUsd)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function Overview() {
  const t = useT();
  const [range, setRange] = useState(1);
  const [byKey, setByKey] = useState<UsageRow[]>([]);
  const [byModel, setByModel] = useState<UsageRow[]>([]);
  const [byDay, setByDay] = useState<UsageRow[]>([]);
  const [error, setError] = useState('');

  useEffect(() => {
    const since = new Date(Date.now() - RANGES[range]![1]);
    Promise.all([usage({ by: 'key', since }), usage({ by: 'model', since })])
      .then(([keys, models]) => {
        setByKey(keys);
        setByModel(models);
      })
      .catch((e: Error) => setError(e.message));
  }, [range]);
  useEffect(() => {
    const since = new Date(Date.now() - RANGES[2]![1]);
    usage({ by: 'day', since })
      .then((rows) => setByDay(everyDay(rows, since, new Date(), zeroRow)))
      .catch((e: Error) => setError(e.message));
  }, []);

  const requests = sum(byKey, (r) => r.requests);
  const series = useMemo(
    () => [
      { label: t('requests'), values: byDay.map((r) => r.requests), color: '#2563eb' },
      { label: t('tokens'), values: byDay.map((r) => r.totalTokens), color: '#16a34a', right: true },
    ],
    [byDay, t('requests')],
  );
  const days = useMemo(() => byDay.map((r) => r.group), [byDay]);
  return (
    <div>
      <div class="toolbar" role="tablist">
        {RANGES.map(([label], index) => (
          <button key={label} class={index === range ? 'active' : ''} onClick={() => setRange(index)}>
            {t(label)}
          </button>
        ))}
      </div>
      {error && <p class="error">{error}</p>}
      <div class="stats">
        <div class="stat"><span>{t('requests')}</span><strong data-stat="requests">{number(requests)}</strong></div>
        <div class="stat"><span>{t('tokens')}</span><strong data-stat="tokens">{number(sum(byKey, (r) => r.totalTokens))}</strong></div>
        <div class="stat"><span>{t('cost')}</span><strong>{usd(sum(byKey, (r) => r.costUsd))}</strong></div>
        <div class="stat"><span>{t('errorRate')}</span><strong>{percent(sum(byKey, (r) => r.errors), requests)}</strong></div>
      </div>
      <section class="card">
        <h3>{t('perDay')}</h3>
        <Chart days={days} series={series} />
      </section>
      <div class="grid2">
        <Top title={t('topKeys')} rows={byKey} />
        <Top title={t('topModels')} rows={byModel} />
      </div>
    </div>
  );
}
