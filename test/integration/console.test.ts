import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { PublicKey } from '../../src/admin/console-types.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { REPO_ROOT, startTestGateway, type TestGateway } from '../helpers/gateway.js';

// The admin web console in a real browser: Debian's `chromium` driven by playwright-core. CI
// (.ci/run) installs it; there a missing browser fails the suite, elsewhere it skips it.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ADMIN = 'admin-token-console-0123456789';
const UPSTREAM_KEY = 'sk-upstream-console-0123456789abcdef';
const BACKUP_KEY = 'sk-upstream-backup-console-fedcba9876543210';
const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
const WAIT = { timeout: 15_000 };

const found = existsSync(CHROMIUM);
const skip = found || process.env.CI === 'true' ? false : `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH); with CI=true this fails instead`;

describe('the admin web console in Chromium', { skip, timeout: 240_000 }, () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let adminUrl: string;
  let secret = '';
  const cspViolations: string[] = [];

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `console-${name}.png`) });
  const chat = (key: string, model = 'gpt-4o-mini') =>
    fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }) });
  const bearer = (method: string, path: string) => fetch(`${adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } });
  const open = async (name: string) => {
    await page.click(`nav a[data-page="${name}"]`);
    await page.waitForSelector(`nav a.active[data-page="${name}"]`, WAIT);
  };
  /**
   * Waits until the first element matching `selector` has text passing `test`. Polled through
   * locators, not page.waitForFunction: that one evaluates its predicate with eval in the page,
   * which the console's Content-Security-Policy (script-src 'self') refuses whenever the
   * predicate is not already true at the first check.
   */
  const waitForText = async (selector: string, test: (text: string) => boolean) => {
    const deadline = Date.now() + WAIT.timeout;
    for (;;) {
      const text = (await page.locator(selector).first().textContent(WAIT)) ?? '';
      if (test(text)) return;
      if (Date.now() > deadline) assert.fail(`${selector} never showed the expected text; it shows ${JSON.stringify(text)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const watchCsp = (target: Page) => target.on('console', (message) => message.text().includes('Content Security Policy') && cspViolations.push(message.text()));

  before(async () => {
    assert.ok(found, `CI=true and no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium`);
    const build = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs'), '--if-stale'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(build.status, 0, `the build failed: ${build.stderr}`);
    mkdirSync(ARTIFACTS, { recursive: true });
    upstream = await FakeUpstream.start();
    // Two upstreams on one fake server, told apart by model: Usage is filtered by upstream below.
    const upstreams = [
      { name: 'default', type: 'openai', base_url: upstream.url, api_keys: [UPSTREAM_KEY], models: ['gpt-4o-mini'] },
      { name: 'backup', type: 'openai', base_url: upstream.url, api_keys: [BACKUP_KEY], models: ['gpt-4.1-nano'] },
    ];
    gateway = await startTestGateway({ UPSTREAMS: JSON.stringify(upstreams), ADMIN_TOKEN: ADMIN, ACCESS_TOKEN: 'access-token-console-0123', MAX_ATTEMPTS: '1' });
    adminUrl = gateway.adminUrl!;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
    context = await browser.newContext({ locale: 'en-US', viewport: { width: 1100, height: 720 } });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT.timeout);
    page.on('dialog', (dialog) => void dialog.accept());
    watchCsp(page);
  });
  after(async () => {
    await browser?.close();
    await gateway?.close();
    await upstream?.close();
  });

  it('serves the page with a strict CSP, the bundle as immutable files, and leaves the Bearer API as it was', async () => {
    const root = await fetch(`${adminUrl}/`);
    assert.equal(root.status, 200);
    assert.match(root.headers.get('content-type')!, /^text\/html/);
    assert.match(root.headers.get('content-security-policy')!, /script-src 'self';/);
    assert.equal(root.headers.get('cache-control'), 'no-cache');
    const html = await root.text();
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    const script = /src="(\/console\/[^"]+\.js)"/.exec(html)![1]!;
    const asset = await fetch(`${adminUrl}${script}`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get('content-type')!, /^text\/javascript/);
    assert.match(asset.headers.get('cache-control')!, /immutable/);
    assert.equal((await bearer('GET', '/admin/keys')).status, 200);
    assert.equal((await fetch(`${adminUrl}/admin/keys`)).status, 401);
  });

  it('refuses a wrong token and signs in with the right one into an HttpOnly, SameSite=Strict session', async () => {
    await page.goto(`${adminUrl}/`);
    await page.fill('input[name="token"]', 'not-the-admin-token-at-all');
    await page.click('form.sign-in button[type="submit"]');
    await page.getByText('Wrong admin token.').waitFor(WAIT);
    const wrong = await fetch(`${adminUrl}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' }, body: JSON.stringify({ token: 'not-the-admin-token-at-all' }) });
    assert.equal(wrong.status, 401);
    await shot(page, 'sign-in');

    await page.fill('input[name="token"]', ADMIN);
    await page.click('form.sign-in button[type="submit"]');
    await page.waitForSelector('nav a[data-page="overview"]', WAIT);
    const [cookie] = await context.cookies(adminUrl);
    assert.ok(cookie, 'a session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/');
    assert.ok(cookie.expires > Date.now() / 1000 + 11 * 3600, 'expires in about 12 hours');
  });

  it('creates a key, shows its secret once, and the key works through /v1', async () => {
    await open('keys');
    await page.click('details.card summary');
    await page.fill('form.key-form input[name="name"]', 'console-app');
    await page.fill('form.key-form input[name="rpd"]', '500');
    await page.click('form.key-form button[type="submit"]');
    secret = (await page.locator('[data-secret]').textContent(WAIT))!.trim();
    assert.match(secret, /^oa-/);
    await page.waitForSelector('tr[data-key="console-app"]', WAIT);
    await shot(page, 'keys');
    const answer = await chat(secret);
    assert.equal(answer.status, 200, await answer.text());
  });

  it('shows the request in the live tail and its tokens in Usage', async () => {
    await open('requests');
    const row = page.locator('tr[data-request]', { hasText: 'console-app' }).first();
    await row.waitFor(WAIT);
    const text = await row.textContent();
    assert.match(text!, /\/v1\/chat\/completions/);
    assert.match(text!, /gpt-4o-mini/);
    assert.match(text!, /17/);
    await shot(page, 'requests');

    await gateway.gateway.writer.flush();
    await open('usage');
    await page.selectOption('select[name="by"]', 'key');
    const usage = page.locator('tr[data-group="console-app"] td[data-col="total"]');
    await usage.waitFor(WAIT);
    assert.equal((await usage.textContent())!.trim(), '17');
    await shot(page, 'usage');

    await open('overview');
    await waitForText('[data-stat="tokens"]', (text) => text === '17');
    await page.waitForSelector('.uplot', WAIT);
    // p50/p95 from the request just made: figures, not the dashes shown without samples.
    await waitForText('[data-stat="latency"]', (text) => /\d/.test(text));
    await waitForText('[data-stat="overhead"]', (text) => /\d/.test(text));
    await shot(page, 'overview');
  });

  it('shows the upstreams without their keys, and no page holds a secret', async () => {
    await open('upstreams');
    await page.waitForSelector('[data-upstream="default"]', WAIT);
    await shot(page, 'upstreams');
    for (const name of ['upstreams', 'requests', 'keys', 'usage', 'overview']) {
      await open(name);
      await page.waitForLoadState('networkidle');
      const html = await page.content();
      for (const key of [UPSTREAM_KEY, BACKUP_KEY]) assert.ok(!html.includes(key) && !html.includes(key.slice(-12)), `${name} shows an upstream key`);
      assert.ok(!html.includes(secret), `${name} shows the app key after creation`);
    }
  });

  it('shows an upstream failure under its last errors, with the key masked', async () => {
    upstream.failWith(429, { error: { message: `Rate limit reached for ${BACKUP_KEY}`, type: 'requests', code: 'rate_limit_exceeded' } }, { 'retry-after': '0' });
    assert.equal((await chat(secret, 'gpt-4.1-nano')).status, 429);
    await open('upstreams');
    await page.getByRole('button', { name: 'Refresh' }).click();
    const row = page.locator('[data-upstream="backup"] tr[data-upstream-error]').first();
    await row.waitFor(WAIT);
    const text = (await row.textContent())!;
    assert.match(text, /429/);
    assert.match(text, /rate_limited/);
    assert.match(text, /\[redacted\]/);
    assert.ok(!text.includes(BACKUP_KEY.slice(-12)), 'the key is masked');
    await shot(page, 'upstreams-errors');
  });

  it('filters Usage by upstream', async () => {
    assert.equal((await chat(secret, 'gpt-4.1-nano')).status, 200);
    await gateway.gateway.writer.flush();
    await open('usage');
    await page.selectOption('select[name="by"]', 'model');
    await page.locator('tr[data-group="gpt-4.1-nano"]').waitFor(WAIT);
    await page.locator('tr[data-group="gpt-4o-mini"]').waitFor(WAIT);
    await page.selectOption('select[name="upstream"]', 'backup');
    await page.locator('tr[data-group="gpt-4o-mini"]').waitFor({ state: 'detached', ...WAIT });
    assert.equal((await page.locator('tr[data-group="gpt-4.1-nano"] td[data-col="total"]').textContent())!.trim(), '17');
    await page.selectOption('select[name="upstream"]', 'default');
    await page.locator('tr[data-group="gpt-4.1-nano"]').waitFor({ state: 'detached', ...WAIT });
    assert.equal((await page.locator('tr[data-group="gpt-4o-mini"] td[data-col="total"]').textContent())!.trim(), '17');
    await page.selectOption('select[name="by"]', 'upstream');
    await page.selectOption('select[name="upstream"]', '');
    await page.locator('tr[data-group="backup"]').waitFor(WAIT);
    await shot(page, 'usage-by-upstream');
  });

  it('edits the key (rpm, persona, defaults, expiry, memory, cache) in the console, and a second request within the minute is refused by the new limit', async () => {
    await open('keys');
    await page.locator('tr[data-key="console-app"]').getByRole('button', { name: 'Edit' }).click();
    const editor = page.locator('[data-editing="console-app"]');
    await editor.waitFor(WAIT);
    assert.equal(await editor.locator('input[name="rpd"]').inputValue(), '500', 'the form starts from the key as it is');
    await editor.locator('input[name="rpm"]').fill('1');
    await editor.locator('textarea[name="bot_desc"]').fill('You answer in one short sentence.');
    await editor.locator('select[name="persona_mode"]').selectOption('prepend');
    await editor.locator('input[name="d_temperature"]').fill('0.3');
    await editor.locator('input[name="expires_at"]').fill('2099-06-30T12:00');
    await editor.locator('input[name="memory_max_turns"]').fill('8');
    await editor.locator('input[name="cache_ttl"]').fill('600');
    await shot(page, 'key-edit');
    await editor.getByRole('button', { name: 'Save' }).click();
    await editor.waitFor({ state: 'detached', ...WAIT });
    await page.locator('tr[data-key="console-app"]', { hasText: '1 rpm' }).waitFor(WAIT);
    const view = (await (await bearer('GET', '/admin/keys/console-app')).json()) as PublicKey;
    assert.deepEqual([view.rpm, view.rpd, view.bot_desc, view.persona_mode, view.defaults], [1, 500, 'You answer in one short sentence.', 'prepend', { temperature: 0.3 }]);
    assert.deepEqual([view.memory_max_turns, view.cache_ttl, view.memory, view.cache_group], [8, 600, null, null], 'memory and cache fields left blank stay unset');
    assert.ok(view.expires_at?.startsWith('2099-06-3'), String(view.expires_at));
    assert.equal((await chat(secret)).status, 200);
    const second = await chat(secret);
    assert.equal(second.status, 429, 'the new rpm of 1 refuses the second request');
    assert.ok(Number(second.headers.get('retry-after')) > 0);

    // A blank field clears its setting.
    await page.locator('tr[data-key="console-app"]').getByRole('button', { name: 'Edit' }).click();
    assert.equal(await editor.locator('input[name="cache_ttl"]').inputValue(), '600');
    await editor.locator('textarea[name="bot_desc"]').fill('');
    await editor.locator('input[name="cache_ttl"]').fill('');
    await editor.getByRole('button', { name: 'Save' }).click();
    await editor.waitFor({ state: 'detached', ...WAIT });
    const cleared = (await (await bearer('GET', '/admin/keys/console-app')).json()) as PublicKey;
    assert.deepEqual([cleared.rpm, cleared.bot_desc, cleared.cache_ttl, cleared.memory_max_turns], [1, null, null, 8]);
  });

  it('rotates the key: the new secret is shown once with a copy button, the old one is refused and the new one works', async () => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: adminUrl });
    await page.locator('tr[data-key="console-app"]').getByRole('button', { name: 'Rotate' }).click();
    const issued = page.locator('[data-issued="console-app"]');
    await issued.waitFor(WAIT);
    const rotated = (await issued.locator('[data-secret]').textContent())!.trim();
    assert.match(rotated, /^oa-/);
    assert.notEqual(rotated, secret);
    await issued.getByRole('button', { name: 'Copy' }).click();
    await issued.getByRole('button', { name: 'Copied' }).waitFor(WAIT);
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), rotated);
    await shot(page, 'key-rotated');
    assert.equal((await chat(secret)).status, 401, 'the old secret is refused');
    assert.equal((await chat(rotated)).status, 200, 'the new secret works');
    await issued.getByRole('button', { name: 'Done' }).click();
    await issued.waitFor({ state: 'detached', ...WAIT });
    assert.ok(!(await page.content()).includes(rotated), 'the secret is gone from the page');
    const old = secret;
    secret = rotated;
    assert.ok(!(await page.content()).includes(old));
  });

  it('disables the key, and the next /v1 request is refused', async () => {
    await open('keys');
    const row = page.locator('tr[data-key="console-app"]');
    await row.getByRole('button', { name: 'Disable' }).click();
    await row.locator('.badge.off').waitFor(WAIT);
    assert.equal((await chat(secret)).status, 401);
  });

  it('refuses a change sent with the session cookie from another origin', async () => {
    // Another port on the same host: same site, so the SameSite=Strict cookie goes along, and the
    // server's own origin check is what refuses it.
    const evil: Server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>evil</title>'));
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const attacker = await context.newPage();
      await attacker.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      const target = `${adminUrl}/admin/keys/console-app/enable`;
      const refused = attacker.waitForResponse(target, WAIT);
      await attacker.evaluate((url) => fetch(url, { method: 'POST', credentials: 'include', mode: 'no-cors' }).then(() => undefined), target);
      assert.equal((await refused).status(), 403, 'the cross-origin change is refused (403, not 401: the cookie was sent)');
      await attacker.close();
    } finally {
      evil.close();
    }
    const cookie = (await context.cookies(adminUrl)).map((c) => `${c.name}=${c.value}`).join('; ');
    const csrf = ((await (await fetch(`${adminUrl}/console/session`, { headers: { cookie } })).json()) as { csrf_token: string }).csrf_token;
    const post = (headers: Record<string, string>) => fetch(`${adminUrl}/admin/keys/console-app/enable`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body: '{}' });
    assert.equal((await post({ origin: 'http://evil.example', 'x-csrf-token': csrf })).status, 403, 'a foreign Origin is refused even with the token');
    assert.equal((await post({ 'sec-fetch-site': 'same-site', 'x-csrf-token': csrf })).status, 403, 'Sec-Fetch-Site other than same-origin is refused');
    assert.equal((await post({ 'sec-fetch-site': 'same-origin' })).status, 403, 'a change without the CSRF header is refused');
    const view = (await (await bearer('GET', '/admin/keys/console-app')).json()) as { enabled: boolean };
    assert.equal(view.enabled, false, 'the key stayed disabled');
  });

  it('speaks 简体中文 when the browser locale is zh-CN, on a phone-sized screen', async () => {
    const zh = await browser.newContext({ locale: 'zh-CN', viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
    try {
      const phone = await zh.newPage();
      watchCsp(phone);
      await phone.goto(`${adminUrl}/`);
      await phone.getByRole('heading', { name: '登录' }).waitFor(WAIT);
      assert.equal(await phone.evaluate('document.documentElement.lang'), 'zh-CN');
      await phone.fill('input[name="token"]', ADMIN);
      await phone.click('form.sign-in button[type="submit"]');
      await phone.getByRole('link', { name: '密钥' }).waitFor(WAIT);
      await phone.waitForSelector('[data-stat="requests"]', WAIT);
      const overflow = await phone.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);
      await shot(phone, 'overview-zh-phone');
      // The key form, with its memory and cache fields, fits the phone too.
      await phone.getByRole('link', { name: '密钥' }).click();
      await phone.click('details.card summary');
      await phone.getByText('缓存时长（秒，0 为关闭）').waitFor(WAIT);
      const formOverflow = await phone.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      assert.ok(formOverflow <= 0, `the key form scrolls sideways by ${formOverflow}px on a phone`);
      await shot(phone, 'key-form-zh-phone');
      await phone.click('button.lang');
      await phone.getByRole('link', { name: 'Keys' }).waitFor(WAIT);
    } finally {
      await zh.close();
    }
  });

  it('signs out, and the old cookie no longer opens a session', async () => {
    const cookie = (await context.cookies(adminUrl)).map((c) => `${c.name}=${c.value}`).join('; ');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForSelector('form.sign-in', WAIT);
    assert.equal((await fetch(`${adminUrl}/console/session`, { headers: { cookie } })).status, 401);
    assert.equal((await fetch(`${adminUrl}/admin/keys`, { headers: { cookie } })).status, 401);
    assert.deepEqual(cspViolations, []);
  });
});
