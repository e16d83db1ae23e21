import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { loadConfig, upstreamsFromConfig } from '../../../src/config/index.js';
import { tempConfigDir } from '../../helpers/temp-config.js';

const doc = readFileSync(new URL('../../../docs/providers.md', import.meta.url), 'utf8');
const blocks = [...doc.matchAll(/^## (.+)\n[\s\S]*?```json\n([\s\S]*?)```/gm)].map((m) => ({ title: m[1]!, json: m[2]! }));

it('docs/providers.md has an example for every documented provider', () => {
  const titles = blocks.map((b) => b.title).join(' | ');
  for (const provider of ['OpenAI', 'Azure', 'Anthropic', 'DeepSeek', 'Moonshot', 'Qwen', 'Zhipu', 'Groq', 'OpenRouter', 'Ollama', 'vLLM']) assert.match(titles, new RegExp(provider));
});

for (const block of blocks) {
  it(`the ${block.title} example loads as a valid config`, () => {
    const parsed = JSON.parse(block.json) as { upstreams: Array<{ api_keys_env?: string; name: string }> };
    const env: Record<string, string> = {};
    for (const upstream of parsed.upstreams) if (upstream.api_keys_env) env[upstream.api_keys_env] = `sk-test-${upstream.name}-0123456789|sk-test-${upstream.name}-second`;
    const config = loadConfig({ env, cwd: tempConfigDir(parsed as unknown as Record<string, unknown>) });
    const upstreams = upstreamsFromConfig(config);
    assert.deepEqual(upstreams.map((u) => u.name), parsed.upstreams.map((u) => u.name));
    for (const upstream of upstreams) {
      const source = parsed.upstreams.find((u) => u.name === upstream.name)!;
      assert.equal(upstream.apiKeys.length, source.api_keys_env ? 2 : 0, `${upstream.name} keys from its env var`);
    }
  });
}
