import { useEffect, useState } from 'preact/hooks';
import { api, type ReloadAnswer, type StatusAnswer, type UpstreamErrorReport } from '../api';
import { dash, number, percent } from '../format';
import { useT } from '../i18n';

/** The upstream's last failed attempts; the server has masked any key in the messages. */
function LastErrors({ errors }: { errors: UpstreamErrorReport[] }) {
  const t = useT();
  return (
    <details class="last-errors" open={errors.length > 0}>
      <summary>
        {t('lastErrors')} ({errors.length})
      </summary>
      {errors.length === 0 ? (
        <p class="muted">{t('noErrors')}</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr><th>{t('time')}</th><th>{t('statusCode')}</th><th>{t('upstreamKeys')}</th><th>{t('message')}</th></tr>
            </thead>
            <tbody>
              {errors.map((error, index) => (
                <tr key={`${error.time}-${index}`} data-upstream-error>
                  <td>{new Date(error.time).toLocaleString()}</td>
                  <td>{[error.status, error.code].filter((part) => part !== null).join(' · ') || '—'}</td>
                  <td>#{error.keyIndex}</td>
                  <td class="message">{error.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </details>
  );
}

export function Upstreams() {
  const t = useT();
  const [status, setStatus] = useState<StatusAnswer | undefined>();
  const [message, setMessage] = useState('');
  const [version, setVersion] = useState(0);

  useEffect(() => {
    api.get<StatusAnswer>('/admin/status').then(setStatus, (e: Error) => setMessage(e.message));
  }, [version]);

  const reload = () =>
    api.post<ReloadAnswer>('/admin/reload').then(
      (result) => {
        setMessage(result.needs_restart.length > 0 ? t('needsRestart', { list: result.needs_restart.join(', ') }) : t('reloaded'));
        setVersion((v) => v + 1);
      },
      (e: Error) => setMessage(e.message),
    );

  return (
    <div>
      <div class="toolbar">
        <button onClick={() => setVersion((v) => v + 1)}>{t('refresh')}</button>
        <button class="primary" onClick={reload}>{t('reload')}</button>
      </div>
      {message && <p class="notice">{message}</p>}
      {status && (
        <div class="stats">
          <div class="stat"><span>{t('storage')}</span><strong>{status.storage.healthy ? t('healthy') : `${t('down')}: ${dash(status.storage.reason)}`}</strong></div>
          <div class="stat"><span>{t('pendingRecords')}</span><strong>{number(status.storage.pending_usage_records)}</strong></div>
          <div class="stat"><span>{t('activeStreams')}</span><strong>{number(status.active_streams)}</strong></div>
          <div class="stat"><span>{t('keys')}</span><strong>{number(status.keys)}</strong></div>
        </div>
      )}
      {status?.upstreams.map((upstream) => (
        <section class="card" key={upstream.name} data-upstream={upstream.name}>
          <h3>
            {upstream.name} <span class="muted">{upstream.type} · weight {upstream.weight}</span>
          </h3>
          <p>
            {t('circuit')}: <span class={upstream.circuit === 'closed' ? 'badge ok' : 'badge off'}>{upstream.circuit}</span>
            {upstream.circuitOpenUntil && ` → ${new Date(upstream.circuitOpenUntil).toLocaleTimeString()}`} · {t('inFlight')}: {upstream.inFlight} · {t('requests')}: {number(upstream.requests)} · {t('errorRate')}: {percent(upstream.errors, upstream.requests)}
          </p>
          <div class="table-wrap">
            <table>
              <thead>
                <tr><th>{t('upstreamKeys')}</th><th>{t('status')}</th><th class="num">{t('inFlight')}</th><th class="num">{t('requests')}</th><th class="num">{t('errors')}</th><th /></tr>
              </thead>
              <tbody>
                {upstream.keys.map((key) => (
                  <tr key={key.index}>
                    <td><code>#{key.index} {key.hint}</code></td>
                    <td><span class={key.status === 'healthy' ? 'badge ok' : 'badge off'}>{key.status}</span></td>
                    <td class="num">{key.inFlight}</td>
                    <td class="num">{number(key.requests)}</td>
                    <td class="num">{number(key.errors)}</td>
                    <td>{key.coolingUntil ? `→ ${new Date(key.coolingUntil).toLocaleTimeString()}` : dash(key.disabledReason)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <LastErrors errors={upstream.lastErrors} />
        </section>
      ))}
    </div>
  );
}
