import { useEffect, useMemo, useState } from 'preact/hooks';
import { latency, usage, type LatencyAnswer, type UsageRow } from '../api';
import { Chart } from '../chart';
import { everyHour, groupSeconds, ms, number, percent, usd, zeroRow } from '../format';
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
  const [byHour, setByHour] = useState<UsageRow[]>([]);
  const [times, setTimes] = useState<LatencyAnswer | undefined>();
  const [error, setError] = useState('');

  useEffect(() => {
    const now = new Date();
    const since = new Date(now.getTime() - RANGES[range]![1]);
    Promise.all([usage({ by: 'key', since }), usage({ by: 'model', since }), usage({ by: 'hour', since }), latency(since)])
      .then(([keys, models, hours, answer]) => {
        setByKey(keys);
        setByModel(models);
        setByHour(everyHour(hours, since, now, zeroRow));
        setTimes(answer);
      })
      .catch((e: Error) => setError(e.message));
  }, [range]);

  const requests = sum(byKey, (r) => r.requests);
  const x = useMemo(() => byHour.map((r) => groupSeconds(r.group)), [byHour]);
  const traffic = useMemo(
    () => [
      { label: t('requests'), values: byHour.map((r) => r.requests), color: '#2563eb' },
      { label: `${t('errorRate')} %`, values: byHour.map((r) => (r.requests === 0 ? 0 : (100 * r.errors) / r.requests)), color: '#dc2626', right: true, format: (v: number) => `${v}%` },
    ],
    [byHour, t('requests')],
  );
  const spend = useMemo(
    () => [
      { label: t('tokens'), values: byHour.map((r) => r.totalTokens), color: '#16a34a' },
      { label: t('cost'), values: byHour.map((r) => r.costUsd ?? 0), color: '#9333ea', right: true, format: (v: number) => (v === 0 ? '0' : v < 0.01 ? `$${v.toExponential(1)}` : `$${Number(v.toPrecision(3))}`) },
    ],
    [byHour, t('tokens')],
  );
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
      <div class="stats">
        <div class="stat"><span>{t('latencyP')}</span><strong data-stat="latency">{ms(times?.latency_ms.p50 ?? null)} / {ms(times?.latency_ms.p95 ?? null)}</strong></div>
        <div class="stat"><span>{t('overheadP')}</span><strong data-stat="overhead">{ms(times?.overhead_ms.p50 ?? null)} / {ms(times?.overhead_ms.p95 ?? null)}</strong></div>
      </div>
      <p class="muted" data-stat="latency-samples">
        {times && times.samples > 0 ? t('latencyOver', { count: number(times.samples), since: new Date(times.oldest!).toLocaleString() }) : t('latencyNone')}
      </p>
      <div class="grid2">
        <section class="card">
          <h3>{t('perHourTraffic')}</h3>
          <Chart x={x} series={traffic} />
        </section>
        <section class="card">
          <h3>{t('perHourSpend')}</h3>
          <Chart x={x} series={spend} />
        </section>
      </div>
      <div class="grid2">
        <Top title={t('topKeys')} rows={byKey} />
        <Top title={t('topModels')} rows={byModel} />
      </div>
    </div>
  );
}
