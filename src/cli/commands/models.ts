// cskv-code models: the models already on this machine (Hugging Face hub cache, LM Studio, llama.cpp's cache,
// Ollama, and folders named with --dir), whether each loads here and why not, and whether CSKV factors exist.
import { parseArgs } from 'node:util';
import { discoverModels, hubCacheDir } from '../../runtime/model/discovery';
import { formatBytes } from '../../shared/formatBytes';
import type { CommandIO } from './shared';

/** The flags `cskv-code models` takes (its usage line in cli.ts names each). */
export const MODELS_OPTIONS = { json: { type: 'boolean' }, dir: { type: 'string', multiple: true } } as const;

export async function modelsCommand(argv: string[], { out }: CommandIO): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: MODELS_OPTIONS, strict: true });
  const models = discoverModels({ folders: v.dir ?? [] });
  if (v.json) {
    out.write(`${JSON.stringify(models, null, 2)}\n`);
    return 0;
  }
  if (models.length === 0) {
    out.write(`no models found (looked in ${hubCacheDir()}, LM Studio's and llama.cpp's folders, Ollama's store${v.dir ? ` and ${v.dir.join(', ')}` : ''})\n`);
    return 0;
  }
  const rows = models.map((m) => [
    m.name, m.source, m.format, m.quantisation ?? '?', formatBytes(m.sizeBytes), m.architecture ?? '?',
    m.parameters ? formatCount(m.parameters) : '?',
    m.loadable ? 'yes' : 'no', m.hasCskvFactors ? 'yes' : 'no',
  ]);
  const header = ['name', 'source', 'format', 'type', 'size', 'architecture', 'params', 'loads', 'cskv'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  out.write(`${line(header)}\n`);
  models.forEach((m, i) => {
    out.write(`${line(rows[i]!)}\n    ${m.path}\n`);
    if (m.reason) out.write(`    cannot load: ${m.reason}\n`);
  });
  return 0;
}

/** 7.6B, 494M, 105K: parameter counts as model cards write them. */
function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${Math.round(n / 1e6)}M`;
  return `${Math.round(n / 1e3)}K`;
}
