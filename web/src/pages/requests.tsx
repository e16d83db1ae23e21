import { useEffect, useState } from 'preact/hooks';
import { api, type RecentRequest } from '../api';
import { dash, number } from '../format';
import { useT } from '../i18n';

const POLL_MS = 2000;

export function Requests() {
  const t = useT();
  const [rows, setRows] = useState<RecentRequest[]>([]);
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState('');

  useEffect(() => {
    if (paused) return;
    let stopped = false;
    const poll = () =>
      api.get<{ data: RecentRequest[] }>('/admin/requests?limit=100').then(
        (answer) => !stopped && (setRows(answer.data), setError('')),
        (e: Error) => !stopped && setError(e.message),
      );
    void poll();
    const timer = setInterval(poll, POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [paused]);

  return (
    <div>
      <div class="toolbar">
        <span class="muted">{t('liveTail')}</span>
        <button onClick={() => setPaused(!paused)}>{paused ? t('resume') : t('pause')}</button>
      </div>
      {error && <p class="error">{error}</p>}
      <div class="table-wrap">
        <table class="requests">
          <thead>
            <tr>
              <th>{t('time')}</th>
              <th>{t('status')}</th>
              <th>{t('method')}</th>
              <th>{t('path')}</th>
              <th>{t('key')}</th>
              <th>{t('model')}</th>
              <th>{t('upstream')}</th>
              <th class="num">{t('tokens')}</th>
              <th class="num">{t('latency')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.request_id} data-request={row.request_id} title={row.request_id}>
                <td>{new Date(row.time).toLocaleTimeString()}</td>
                <td><span class={row.status < 400 ? 'badge ok' : 'badge off'}>{row.status}</span>{row.error && <span class="muted"> {row.error}</span>}</td>
                <td>{row.method}</td>
                <td>{row.path}</td>
                <td>{dash(row.caller)}</td>
                <td>{dash(row.model)}</td>
                <td>{dash(row.upstream)}</td>
                <td class="num">{row.total_tokens === null ? '—' : number(row.total_tokens)}</td>
                <td class="num">{number(row.latency_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {rows.length === 0 && <p class="muted">{t('noData')}</p>}
    </div>
  );
}
