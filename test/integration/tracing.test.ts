import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { tracingLoaded } from '../../src/observability/tracing.js';
import { FakeUpstream, openAiError } from '../helpers/fake-upstream.js';
import { REPO_ROOT, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const APP_KEY = 'sk-app-tracing-secret-0001';
const UPSTREAM_KEYS = ['sk-upstream-tracing-secret-a', 'sk-upstream-tracing-secret-b'];
const COLLECTOR_TOKEN = 'collector-secret-token';
const PROMPT = 'the prompt text that must stay out of traces';

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: OtlpAttribute[];
  status?: { code?: number };
}

/** The values of a span's attributes, numbers as numbers. */
function attributesOf(span: OtlpSpan): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of span.attributes) {
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue;
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
  }
  return out;
}

const SPAN_KIND = { SERVER: 2, CLIENT: 3 };

/** An OTLP/HTTP receiver on loopback: `POST /v1/traces` with JSON bodies, as a Collector takes them. */
class OtlpReceiver {
  readonly bodies: string[] = [];
  readonly headers: IncomingHttpHeaders[] = [];
  readonly resources: Array<Record<string, string | number | boolean>> = [];
  readonly spans: OtlpSpan[] = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<OtlpReceiver> {
    const server = createServer();
    const receiver = new OtlpReceiver(server);
    server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.method !== 'POST' || request.url !== '/v1/traces') {
          response.writeHead(404).end();
          return;
        }
        const text = Buffer.concat(chunks).toString('utf8');
        receiver.bodies.push(text);
        receiver.headers.push(request.headers);
        const body = JSON.parse(text) as { resourceSpans: Array<{ resource: { attributes: OtlpAttribute[] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
        for (const resourceSpans of body.resourceSpans) {
          receiver.resources.push(attributesOf({ attributes: resourceSpans.resource.attributes } as OtlpSpan));
          for (const scope of resourceSpans.scopeSpans) receiver.spans.push(...scope.spans);
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The spans of one request: its server span (found by request id) and every span below it. */
  requestSpans(requestId: string): { request: OtlpSpan; attempts: OtlpSpan[] } | undefined {
    const request = this.spans.find((span) => span.kind === SPAN_KIND.SERVER && attributesOf(span)['openai_api.request.id'] === requestId);
    if (request === undefined) return undefined;
    const attempts = this.spans.filter((span) => span.parentSpanId === request.spanId).sort((a, b) => Number(attributesOf(a)['openai_api.attempt']) - Number(attributesOf(b)['openai_api.attempt']));
    return { request, attempts };
  }

  /** Waits (up to 5 s) for a request's span and `attempts` attempt spans to arrive. */
  async waitFor(requestId: string, attempts: number): Promise<{ request: OtlpSpan; attempts: OtlpSpan[] }> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const found = this.requestSpans(requestId);
      if (found !== undefined && found.attempts.length >= attempts) return found;
      if (Date.now() > deadline) assert.fail(`no spans for ${requestId} (have ${this.spans.map((span) => span.name).join(', ')})`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const hex = (bytes: number): string => Array.from({ length: bytes }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join('');

async function chat(gateway: TestGateway, requestId: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', 'x-request-id': requestId, ...headers },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }], max_tokens: 50, temperature: 0.3, top_p: 0.9 }),
  });
}

describe('OpenTelemetry traces', () => {
  let upstream: FakeUpstream;
  let receiver: OtlpReceiver;
  let gateway: TestGateway;

  before(async () => {
    upstream = await FakeUpstream.start({ websockets: true });
    receiver = await OtlpReceiver.start();
    gateway = await startTestGateway({
      BASE_URL: upstream.url,
      APIKEY: UPSTREAM_KEYS.join('|'),
      KEYS: JSON.stringify([{ name: 'team-tracing', key: APP_KEY }]),
      MAX_ATTEMPTS: '2',
      RETRY_BASE_DELAY: '0',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.origin,
      OTEL_EXPORTER_OTLP_HEADERS: `x-collector-token=${COLLECTOR_TOKEN}`,
      OTEL_SERVICE_NAME: 'gateway-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '20',
    });
  });
  after(async () => {
    await gateway.close();
    await receiver.close();
    await upstream.close();
  });

  it('a chat with a traceparent: the request span is the caller span child, its attempt span is forwarded upstream', async () => {
    upstream.reset();
    const traceId = hex(16);
    const callerSpanId = hex(8);
    const response = await chat(gateway, 'trace-chat-1', { traceparent: `00-${traceId}-${callerSpanId}-01`, tracestate: 'caller=kept' });
    assert.equal(response.status, 200);
    await response.text();
    assert.ok(tracingLoaded(), 'the SDK is loaded when an endpoint is configured');

    const { request, attempts } = await receiver.waitFor('trace-chat-1', 1);
    assert.equal(request.traceId, traceId);
    assert.equal(request.parentSpanId, callerSpanId);
    assert.equal(request.name, 'chat gpt-4o-mini');
    const attributes = attributesOf(request);
    assert.deepEqual(
      {
        operation: attributes['gen_ai.operation.name'],
        provider: attributes['gen_ai.provider.name'],
        requestModel: attributes['gen_ai.request.model'],
        responseModel: attributes['gen_ai.response.model'],
        input: attributes['gen_ai.usage.input_tokens'],
        output: attributes['gen_ai.usage.output_tokens'],
        maxTokens: attributes['gen_ai.request.max_tokens'],
        temperature: attributes['gen_ai.request.temperature'],
        topP: attributes['gen_ai.request.top_p'],
        status: attributes['http.response.status_code'],
        route: attributes['http.route'],
        key: attributes['openai_api.key.name'],
        upstream: attributes['openai_api.upstream'],
        attempts: attributes['openai_api.attempts'],
        error: attributes['error.type'],
      },
      { operation: 'chat', provider: 'openai', requestModel: 'gpt-4o-mini', responseModel: 'gpt-4o-mini', input: 12, output: 5, maxTokens: 50, temperature: 0.3, topP: 0.9, status: 200, route: '/v1/*', key: 'team-tracing', upstream: 'default', attempts: 1, error: undefined },
    );

    assert.equal(attempts.length, 1);
    const [attempt] = attempts as [OtlpSpan];
    assert.equal(attempt.traceId, traceId);
    assert.equal(attempt.kind, SPAN_KIND.CLIENT);
    assert.equal(attempt.name, 'chat gpt-4o-mini');
    const attemptAttributes = attributesOf(attempt);
    assert.equal(attemptAttributes['server.address'], '127.0.0.1');
    assert.equal(attemptAttributes['server.port'], Number(new URL(upstream.url).port));
    assert.equal(attemptAttributes['openai_api.attempt'], 1);
    assert.equal(attemptAttributes['openai_api.upstream'], 'default');
    assert.equal(attemptAttributes['http.response.status_code'], 200);
    assert.equal(attemptAttributes['gen_ai.provider.name'], 'openai');

    // The upstream saw the attempt span as its parent, in the caller's trace, with the caller's tracestate.
    const sent = upstream.last();
    assert.equal(sent.headers.traceparent, `00-${traceId}-${attempt.spanId}-01`);
    assert.equal(sent.headers.tracestate, 'caller=kept');

    assert.equal(receiver.resources[0]?.['service.name'], 'gateway-under-test');
    assert.equal(receiver.headers[0]?.['x-collector-token'], COLLECTOR_TOKEN);
    assert.match(String(receiver.headers[0]?.['content-type']), /application\/json/);
  });

  it('a request without a traceparent starts a trace of its own', async () => {
    const response = await chat(gateway, 'trace-root-1');
    await response.text();
    const { request, attempts } = await receiver.waitFor('trace-root-1', 1);
    assert.equal(request.parentSpanId ?? '', '');
    assert.equal(attempts[0]?.traceId, request.traceId);
    assert.equal(upstream.last().headers.traceparent, `00-${request.traceId}-${attempts[0]?.spanId}-01`);
  });

  it('a retried request (500, then 200 with the other key) has two attempt spans', async () => {
    upstream.reset();
    upstream.failWith(500, openAiError(500, 'The server had an error.', 'server_error', null));
    const response = await chat(gateway, 'trace-retry-1');
    assert.equal(response.status, 200);
    await response.text();
    const { request, attempts } = await receiver.waitFor('trace-retry-1', 2);
    assert.equal(attempts.length, 2);
    const [first, second] = attempts.map(attributesOf) as [Record<string, unknown>, Record<string, unknown>];
    assert.deepEqual([first['openai_api.attempt'], first['http.response.status_code'], first['error.type']], [1, 500, '500']);
    assert.deepEqual([second['openai_api.attempt'], second['http.response.status_code'], second['error.type'], second['http.request.resend_count']], [2, 200, undefined, 1]);
    assert.equal(attempts[0]?.status?.code, 2, 'the failed attempt is an error span');
    assert.equal(attributesOf(request)['openai_api.attempts'], 2);
    assert.equal(attributesOf(request)['http.response.status_code'], 200);
    // Each attempt told the upstream its own span.
    assert.deepEqual(
      upstream.requests.map((sent) => sent.headers.traceparent),
      attempts.map((attempt) => `00-${request.traceId}-${attempt.spanId}-01`),
    );
  });

  it('a refused request is traced with its error code and no upstream attempt', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-not-a-key-of-this-gateway', 'content-type': 'application/json', 'x-request-id': 'trace-refused-1' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }),
    });
    assert.equal(response.status, 401);
    const { request, attempts } = await receiver.waitFor('trace-refused-1', 0);
    assert.equal(attempts.length, 0);
    const attributes = attributesOf(request);
    assert.equal(attributes['http.response.status_code'], 401);
    assert.equal(typeof attributes['error.type'], 'string');
    assert.notEqual(request.status?.code, 2, 'a 4xx is not a server span error');
  });

  it('each turn on a Responses WebSocket gets a span of its own, with its usage, the child of the handshake\'s traceparent', async () => {
    const traceId = hex(16);
    const callerSpanId = hex(8);
    const ws = new WebSocket(`${gateway.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: `Bearer ${APP_KEY}`, 'x-request-id': 'trace-ws-1', traceparent: `00-${traceId}-${callerSpanId}-01` } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const completed = new Promise<void>((resolve) => ws.on('message', (data) => (JSON.parse(String(data)) as { type: string }).type === 'response.completed' && resolve()));
    ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-4o-mini', input: PROMPT }));
    await completed;
    ws.close();
    const deadline = Date.now() + 5000;
    let turn: OtlpSpan | undefined;
    while ((turn = receiver.spans.find((span) => attributesOf(span)['openai_api.request.id'] === 'trace-ws-1.1')) === undefined) {
      if (Date.now() > deadline) assert.fail('no span for the WebSocket turn');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(turn.name, 'chat gpt-4o-mini');
    assert.equal(turn.traceId, traceId);
    assert.equal(turn.parentSpanId, callerSpanId);
    const attributes = attributesOf(turn);
    assert.equal(attributes['gen_ai.operation.name'], 'chat');
    assert.equal(attributes['openai_api.key.name'], 'team-tracing');
    assert.equal(typeof attributes['gen_ai.usage.input_tokens'], 'number');
    assert.equal(attributes['error.type'], undefined);
  });

  it('no span carries a key, a prompt or an answer', async () => {
    await receiver.waitFor('trace-retry-1', 2);
    const exported = receiver.bodies.join('\n');
    for (const secret of [APP_KEY, ...UPSTREAM_KEYS, COLLECTOR_TOKEN, PROMPT, upstream.replyText, 'sk-not-a-key-of-this-gateway']) {
      assert.ok(!exported.includes(secret), `exported spans hold ${secret.slice(0, 12)}…`);
    }
    assert.ok(!gateway.logText().includes(COLLECTOR_TOKEN));
  });
});

describe('OpenTelemetry traces at shutdown', () => {
  it('gateway.close() exports the spans still queued', async () => {
    const upstream = await FakeUpstream.start();
    const receiver = await OtlpReceiver.start();
    try {
      // The default batch delay is 5 s: only the shutdown flush can deliver the span in time.
      const gateway = await startTestGateway({ BASE_URL: upstream.url, KEYS: JSON.stringify([{ name: 'team-tracing', key: APP_KEY }]), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.origin}/v1/traces` });
      const response = await chat(gateway, 'trace-shutdown-1');
      await response.text();
      assert.equal(receiver.requestSpans('trace-shutdown-1'), undefined);
      await gateway.close();
      const found = receiver.requestSpans('trace-shutdown-1');
      assert.ok(found, 'the request span was exported by close()');
      assert.equal(found.attempts.length, 1);
      assert.equal(receiver.resources[0]?.['service.name'], 'openai-api');
    } finally {
      await receiver.close();
      await upstream.close();
    }
  });
});

describe('OpenTelemetry traces off', () => {
  it('without an OTLP endpoint the SDK is never loaded and no traceparent is sent upstream', async () => {
    // A process of its own: this test file loads the SDK for the tests above.
    const dir = mkdtempSync(join(tmpdir(), 'openai-api-tracing-off-'));
    const script = join(dir, 'probe.mts');
    const from = (path: string): string => pathToFileURL(join(REPO_ROOT, path)).href;
    writeFileSync(
      script,
      `import { createRequire } from 'node:module';
import { startTestGateway } from ${JSON.stringify(from('test/helpers/gateway.ts'))};
import { FakeUpstream } from ${JSON.stringify(from('test/helpers/fake-upstream.ts'))};
import { tracingLoaded } from ${JSON.stringify(from('src/observability/tracing.ts'))};
const upstream = await FakeUpstream.start();
const gateway = await startTestGateway({ BASE_URL: upstream.url, ACCESS_TOKEN: 'tracing-off-token', OTEL_SERVICE_NAME: 'set-but-no-endpoint' });
const response = await fetch(gateway.url + '/v1/chat/completions', { method: 'POST', headers: { authorization: 'Bearer tracing-off-token', 'content-type': 'application/json', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }) });
await response.text();
await gateway.close();
await upstream.close();
const modules = Object.keys(createRequire(import.meta.url).cache).filter((path) => /@opentelemetry[\\\\/](?!api[\\\\/])/.test(path));
console.log(JSON.stringify({ status: response.status, loaded: tracingLoaded(), modules: modules.slice(0, 5), traceparent: upstream.last().headers.traceparent ?? null }));
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    rmSync(dir, { recursive: true, force: true });
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { status: number; loaded: boolean; modules: string[]; traceparent: string | null };
    assert.deepEqual(result, { status: 200, loaded: false, modules: [], traceparent: null });
  });
});
