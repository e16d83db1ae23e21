import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config/index.js';
import { tempConfigDir } from '../../helpers/temp-config.js';

const tracing = (env: Record<string, string>) => loadConfig({ env, cwd: tempConfigDir() }).tracing;

function configError(env: Record<string, string>): string {
  try {
    tracing(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.ok(!error.message.includes('\n'), 'config errors are one line');
    return error.message;
  }
  assert.fail('expected a config error');
}

describe('tracing configuration (OTEL_* environment variables)', () => {
  it('is off without an OTLP endpoint, whatever else is set', () => {
    assert.equal(tracing({}).enabled, false);
    // Variables meant for other tools do not stop the gateway while no endpoint turns tracing on.
    assert.equal(tracing({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'jaeger_remote', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).enabled, false);
  });

  it('appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT and uses the traces endpoint as is', () => {
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).endpoint, 'http://collector:4318/v1/traces');
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example/base/' }).endpoint, 'https://otlp.example/base/v1/traces');
    const both = tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:9999/custom' });
    assert.equal(both.endpoint, 'http://traces:9999/custom');
    assert.equal(both.enabled, true);
  });

  it('is off when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none', () => {
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'TRUE' }).enabled, false);
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'false' }).enabled, true);
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }).enabled, false);
    assert.match(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'zipkin' }), /OTEL_TRACES_EXPORTER .*OTLP only/);
  });

  it('defaults: service openai-api, parent-based always-on sampling, no headers', () => {
    const config = tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' });
    assert.equal(config.serviceName, 'openai-api');
    assert.deepEqual(config.sampler, { name: 'parentbased_always_on', ratio: 1 });
    assert.deepEqual(config.headers, {});
    assert.equal(config.timeoutMs, 10_000);
    assert.equal(config.compression, 'none');
  });

  it('reads headers (traces-specific ones win), decoding percent-escapes', () => {
    const config = tracing({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-team=a%20b, authorization=Basic%20abc',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'authorization=Bearer%20traces',
    });
    assert.deepEqual(config.headers, { 'x-team': 'a b', authorization: 'Bearer traces' });
  });

  it('never echoes a header value in an error', () => {
    const message = configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_HEADERS: 'api-key=secret-value-%zz' });
    assert.match(message, /OTEL_EXPORTER_OTLP_HEADERS .*percent-encoding/);
    assert.ok(!message.includes('secret-value'), message);
    assert.match(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_HEADERS: 'secretwithoutequals' }), /not key=value/);
  });

  it('takes the service name from OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES', () => {
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource,deployment.environment=prod' }).serviceName, 'from-resource');
    const both = tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SERVICE_NAME: 'named', OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource,deployment.environment=prod' });
    assert.equal(both.serviceName, 'named');
    assert.equal(both.resourceAttributes['deployment.environment'], 'prod');
  });

  it('reads the sampler and its ratio', () => {
    assert.deepEqual(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).sampler, { name: 'parentbased_traceidratio', ratio: 0.25 });
    assert.deepEqual(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'always_off' }).sampler, { name: 'always_off', ratio: 1 });
    assert.match(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'jaeger_remote' }), /OTEL_TRACES_SAMPLER .*expected one of always_on/);
    assert.match(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' }), /OTEL_TRACES_SAMPLER_ARG .*from 0 to 1/);
  });

  it('refuses gRPC, a non-HTTP endpoint and bad numbers, naming the variable', () => {
    assert.match(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /OTEL_EXPORTER_OTLP_PROTOCOL .*not gRPC/);
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).enabled, true);
    assert.match(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), /OTEL_EXPORTER_OTLP_ENDPOINT .*http/);
    assert.match(configError({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }), /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT .*not a URL/);
    assert.match(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TIMEOUT: '10s' }), /OTEL_EXPORTER_OTLP_TIMEOUT .*whole number/);
    assert.equal(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2500', OTEL_BSP_SCHEDULE_DELAY: '100' }).timeoutMs, 2500);
    assert.match(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_COMPRESSION: 'brotli' }), /gzip/);
  });
});
