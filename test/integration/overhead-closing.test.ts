import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { chatStreamEvents, FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway } from '../helpers/gateway.js';

const TOKEN = 'overhead-closing-token';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Fastify answers a request that arrives while the gateway closes with its own 503, before any
// hook of ours runs. It still carries the overhead header, like every other answer.
describe('the overhead header while closing', () => {
  it("is on Fastify's 503 for a request pipelined behind a stream during the drain", async () => {
    const upstream = await FakeUpstream.start();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    upstream.script(async (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.flushHeaders();
      const events = chatStreamEvents('gpt-4o-mini', 'held', true);
      response.write(`data: ${events[0]}\n\n`);
      await released;
      for (const data of events.slice(1)) response.write(`data: ${data}\n\n`);
      response.end();
    });
    const gateway = await startTestGateway({ BASE_URL: upstream.url, ACCESS_TOKEN: TOKEN, DRAIN_TIMEOUT: '30' });
    const { port } = new URL(gateway.url);
    const socket = connect(Number(port), '127.0.0.1');
    try {
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (received += chunk));
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      for (let i = 0; i < 200 && !received.includes('data: '); i++) await sleep(25);
      assert.match(received, /^HTTP\/1\.1 200/, 'the stream began before the drain');

      const closed = gateway.close();
      await sleep(50);
      socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
      await sleep(200);
      release();
      await ended;
      await closed;

      const second = received.slice(received.indexOf('HTTP/1.1', 10));
      assert.match(second, /^HTTP\/1\.1 503/, `Fastify's 503 follows the stream: ${JSON.stringify(second.slice(0, 200))}`);
      const head = second.slice(0, second.indexOf('\r\n\r\n')).toLowerCase();
      const overhead = /\r\nx-openai-api-overhead-ms: (\d+\.\d{3})\r?/.exec(`${head}\r\n`);
      assert.ok(overhead, `the 503 carries the overhead header: ${head}`);
      assert.ok(Number(overhead[1]) >= 0 && Number(overhead[1]) < 10_000);
      assert.match(head, /\r\nconnection: close/);
    } finally {
      socket.destroy();
      await upstream.close();
    }
  });
});
