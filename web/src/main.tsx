import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { resumeSession, signOut, whenSignedOut } from './api';
import { initialLang, LangContext, saveLang, useT, type Key, type Lang } from './i18n';
import { Keys } from './pages/keys';
import { Overview } from './pages/overview';
import { Requests } from './pages/requests';
import { SignIn } from './pages/sign-in';
import { Upstreams } from './pages/upstreams';
import { Usage } from './pages/usage';

const PAGES: Array<[string, Key, () => preact.JSX.Element]> = [
  ['overview', 'overview', Overview],
  ['keys', 'keys', Keys],
  ['usage', 'usage', Usage],
  ['upstreams', 'upstreams', Upstreams],
  ['requests', 'requests', Requests],
];

const pageFromHash = (): string => {
  const name = location.hash.replace(/^#\/?/, '');
  return PAGES.some(([id]) => id === name) ? name : 'overview';
};

function Shell({ lang, setLang }: { lang: Lang; setLang: (lang: Lang) => void }) {
  const t = useT();
  const [state, setState] = useState<'loading' | 'out' | 'in'>('loading');
  const [page, setPage] = useState(pageFromHash);

  useEffect(() => {
    whenSignedOut(() => setState('out'));
    resumeSession().then((live) => setState(live ? 'in' : 'out'));
    const onHash = () => setPage(pageFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = t('title');
  }, [lang]);

  const Page = PAGES.find(([id]) => id === page)![2];
  return (
    <>
      <header>
        <h1>{t('title')}</h1>
        {state === 'in' && (
          <nav>
            {PAGES.map(([id, label]) => (
              <a key={id} href={`#/${id}`} class={id === page ? 'active' : ''} data-page={id}>
                {t(label)}
              </a>
            ))}
          </nav>
        )}
        <div class="header-actions">
          <button class="lang" onClick={() => setLang(lang === 'en' ? 'zh-CN' : 'en')}>{t('language')}</button>
          {state === 'in' && <button onClick={() => signOut().then(() => setState('out'))}>{t('signOut')}</button>}
        </div>
      </header>
      <main>{state === 'out' ? <SignIn onSignedIn={() => setState('in')} /> : state === 'in' ? <Page key={page} /> : null}</main>
    </>
  );
}

function App() {
  const [lang, setLang] = useState<Lang>(initialLang);
  return (
    <LangContext.Provider value={lang}>
      <Shell
        lang={lang}
        setLang={(next) => {
          saveLang(next);
          setLang(next);
        }}
      />
    </LangContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
