import { useState } from 'preact/hooks';
import { ApiError, signIn } from '../api';
import { useT } from '../i18n';

export function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const t = useT();
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  return (
    <form
      class="card sign-in"
      onSubmit={(e) => {
        e.preventDefault();
        setError('');
        signIn(token).then(onSignedIn, (err: Error) => setError(err instanceof ApiError && err.status === 401 ? t('wrongToken') : err.message));
      }}
    >
      <h2>{t('signIn')}</h2>
      <p class="muted">{t('signInHint')}</p>
      <label>
        {t('adminToken')}
        <input name="token" type="password" autocomplete="current-password" required value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit" class="primary">{t('signIn')}</button>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}
