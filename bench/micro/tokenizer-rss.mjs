// RSS of a process that admits 2,000 chat requests for a key with rpm + tpm + budget_usd far from
// its limits, with the byte bound (the tokenizer never loads) and with the estimate callback
// (every prompt tokenized: o200k loads), each in a fresh process, after a full GC; best of 3.
//
//   npm run build && node bench/micro/tokenizer-rss.mjs [--dist=dist]
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')));
const dist = path.resolve(args.dist ?? fileURLToPath(new URL('../../dist', import.meta.url)));

if (args.mode === undefined) {
  for (const mode of ['imports', 'bound', 'tokenize']) {
    const runs = Array.from({ length: 3 }, () => JSON.parse(execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), `--mode=${mode}`, `--dist=${dist}`], { encoding: 'utf8' })));
    const best = runs.reduce((a, b) => (a.rss <= b.rss ? a : b));
    console.log(`${mode.padEnd(8)} RSS ${best.rss.toFixed(1)} MB (peak ${best.peak.toFixed(1)} MB), heap used ${best.heapUsed.toFixed(1)} MB, tokenizer loaded: ${best.tokenizer}`);
  }
} else {
  const load = (file) => import(pathToFileURL(path.join(dist, file)).href);
  const { Admission } = await load('policy/admission.js');
  const { LimitTracker } = await load('limits/limit-tracker.js');
  const { PriceTable } = await load('metering/pricing.js');
  const { estimatePromptTokens } = await load('metering/token-estimate.js');
  const { requestedMaxTokens } = await load('metering/estimate-usage.js');
  const { toAppKey } = await load('auth/app-key.js');
  const { createRequire } = await import('node:module');

  const row = {
    id: 'key-1', name: 'bench', enabled: true, expiresAt: null, models: null, rpm: 1e9, tpm: 1e12, rpd: null, budgetTokens: null, budgetUsd: 1e9, budgetPeriod: null,
    botDesc: null, personaMode: null, defaults: null, maxTokensCeiling: null, allowOrigin: null, endpoints: null,
  };
  const caller = { kind: 'app_key', name: 'bench', key: toAppKey(row) };
  const prices = new PriceTable();
  const admission = new Admission(new LimitTracker({ loadUsage: async () => ({ requests: 0, tokens: 0, costUsd: 0 }) }), undefined, false, prices);
  const model = 'gpt-4o-mini';
  if (args.mode !== 'imports') {
    for (let i = 0; i < 2000; i += 1) {
      const body = { model, messages: [{ role: 'user', content: `request ${i}: say hello to the benchmark in one short sentence.` }], max_tokens: 64 };
      let ticket =
        args.mode === 'bound'
          ? admission.admitPrompt(caller, model, 'chat', body)
          : admission.admit(caller, model, () => {
              const prompt = estimatePromptTokens('chat', body, model);
              const completion = requestedMaxTokens(body);
              return { tokens: prompt + completion, costUsd: prices.cost(model, { promptTokens: prompt, completionTokens: completion, cachedTokens: 0 }) ?? 0 };
            });
      if (typeof ticket.then === 'function') ticket = await ticket;
      ticket.settle({ tokens: 20, costUsd: 0 });
    }
  }
  globalThis.gc();
  await new Promise((resolve) => setTimeout(resolve, 50));
  globalThis.gc();
  const memory = process.memoryUsage();
  const tokenizer = Object.keys(createRequire(import.meta.url).cache).some((file) => file.includes('gpt-tokenizer'));
  process.stdout.write(JSON.stringify({ rss: memory.rss / 2 ** 20, peak: process.resourceUsage().maxRSS / 1024, heapUsed: memory.heapUsed / 2 ** 20, tokenizer }));
}
