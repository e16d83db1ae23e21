import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { runCli, spawnGateway } from '../helpers/gateway.js';
import { tempConfigDir } from '../helpers/temp-config.js';

describe('openai-api command', () => {
  it('prints help and version', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /openai-api \[serve\]/);
    const version = await runCli(['--version']);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('rejects an unknown option with exit code 2', async () => {
    const result = await runCli(['--frobnicate']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown option --frobnicate/);
  });

  it('stops with one line naming the bad env var', async () => {
    const result = await runCli([], { env: { TEMPREATURE: 'hot', HOST: '127.0.0.1', PORT: '0' } });
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /TEMPREATURE \(env var\) is "hot": expected a number from 0 to 2/);
  });

  it('stops with one line naming the bad key of --config', async () => {
    const dir = tempConfigDir({ port: 70000 });
    const result = await runCli(['serve', '--config', `${dir}/config.json`]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /"port" in .*config\.json is 70000: expected an integer from 0 to 65535/);
  });

  it('refuses to start open on a public address, and says how to fix it', async () => {
    const result = await runCli([], { env: { HOST: '0.0.0.0', PORT: '0' } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no access_token is set/);
    assert.match(result.stderr, /allow_anonymous: true \(ALLOW_ANONYMOUS=true\)/);
  });

  it('starts open on a public address when allow_anonymous is set, saying "listening" once for both listeners', async () => {
    // 0.0.0.0 is where Fastify's own line would appear once per interface address, beside ours.
    const gateway = await spawnGateway({ env: { HOST: '0.0.0.0', ALLOW_ANONYMOUS: 'true', ADMIN_TOKEN: 'admin-token-0123456789', ADMIN_PORT: '0' } });
    gateway.child.kill('SIGTERM');
    assert.equal((await gateway.exited).code, 0);
    const listening = `${gateway.stdout()}\n${gateway.stderr()}`.split('\n').filter((line) => /listening/i.test(line));
    assert.equal(listening.length, 1, listening.join('\n'));
    const line = JSON.parse(listening[0]!) as { msg: string; url: string; admin_url: string | null };
    assert.equal(line.msg, 'openai-api listening');
    assert.match(line.admin_url ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('serves with the seed config.json, reaches the upstream through PROXY, and exits 0 on SIGTERM', async () => {
    const upstream = await FakeUpstream.start();
    const tunnels: string[] = [];
    const proxy = createServer();
    proxy.on('connect', (request, clientSocket, head) => {
      tunnels.push(request.url ?? '');
      const [host, port] = (request.url ?? '').split(':');
      const target = connect(Number(port), host, () => {
        clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        target.write(head);
        target.pipe(clientSocket);
        clientSocket.pipe(target);
      });
      target.on('error', () => clientSocket.destroy());
      clientSocket.on('error', () => target.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const cwd = tempConfigDir({ api_key: 'sk-seed-file-key', access_token: 'seed-token', base_url: upstream.url, bot_desc: 'Be brief.', host: '127.0.0.1', port: 0, proxy: proxyUrl });
    const gateway = await spawnGateway({ cwd, env: {} });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: 'Bearer seed-token', 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end('{"prompt":"hi"}');
      });
      assert.deepEqual(JSON.parse(body), { code: 200, data: upstream.replyText, msg: 'success' });
      assert.equal(upstream.last().headers.authorization, 'Bearer sk-seed-file-key');
      assert.deepEqual(tunnels, [new URL(upstream.url).host]);
      gateway.child.kill('SIGTERM');
      const exit = await gateway.exited;
      assert.equal(exit.code, 0);
      assert.ok(!gateway.stdout().includes('sk-seed-file-key') && !gateway.stderr().includes('sk-seed-file-key'));
      assert.ok(!gateway.stdout().includes('seed-token'));
    } finally {
      gateway.child.kill('SIGKILL');
      proxy.close();
      await upstream.close();
    }
  });
});
