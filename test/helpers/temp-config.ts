import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temp directory holding `config.json` with the given content (or none). */
export function tempConfigDir(fileConfig?: Record<string, unknown> | string): string {
  const dir = mkdtempSync(join(tmpdir(), 'openai-api-test-'));
  if (fileConfig !== undefined) writeFileSync(join(dir, 'config.json'), typeof fileConfig === 'string' ? fileConfig : JSON.stringify(fileConfig, null, 2));
  return dir;
}
