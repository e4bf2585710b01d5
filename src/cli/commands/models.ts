// cskv-code models: the models already on this machine (Hugging Face hub cache, LM Studio, llama.cpp's cache,
// Ollama, and folders named with --dir), whether each loads here and why not, whether CSKV factors exist, and
// whether it fits the GPU for a workspace of --budget tokens (and so do the download presets, for the picker).
import { parseArgs } from 'node:util';
import { checkCuda, gpuReport } from '../../runtime/backends/cudaAvailability';
import { deviceModelShape, gpuFit } from '../../runtime/backends/cudaMemoryPlan';
import { loadNativeAddon } from '../../runtime/backends/nativeAddon';
import { readModelConfig } from '../../runtime/model/config';
import { discoverModels, hubCacheDir } from '../../runtime/model/discovery';
import type { ModelsListing } from '../../shared/foundModel';
import { formatBytes } from '../../shared/formatBytes';
import { type GpuFit, describeFit, describeGpu, fitCell } from '../../shared/gpuFit';
import { MODEL_PRESETS, type PresetShape } from '../../shared/modelPresets';
import { DEFAULTS } from '../../shared/settings';
import { type CommandIO, optionalInt } from './shared';

/** The flags `cskv-code models` takes (its usage line in cli.ts names each). */
export const MODELS_OPTIONS = {
  json: { type: 'boolean' }, dir: { type: 'string', multiple: true }, budget: { type: 'string' }, 'native-library': { type: 'string' },
} as const;

export async function modelsCommand(argv: string[], { out }: CommandIO): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: MODELS_OPTIONS, strict: true });
  const budgetTokens = optionalInt(v.budget, '--budget') ?? DEFAULTS.contextTokenBudget;
  const cuda = await checkCuda({ nativeLibrary: v['native-library'] });
  const gpu = gpuReport(cuda);
  const addon = gpu.found && cuda.addonFile ? loadNativeAddon({ file: cuda.addonFile }) : undefined;
  const fitOf = (shape: PresetShape): GpuFit | undefined => (gpu.found && addon?.loaded
    ? gpuFit({ shape: deviceModelShape(shape), maxPositions: shape.maxPositions, budgetTokens, freeBytes: gpu.freeBytes, layoutOf: (s) => addon.addon.cacheLayout(s) })
    : undefined);
  const listing: ModelsListing = {
    gpu, budgetTokens,
    models: discoverModels({ folders: v.dir ?? [] }).map((m) => ({ ...m, gpuFit: m.loadable ? fitOfModel(m.path, fitOf) : undefined })),
    presets: MODEL_PRESETS.map((p) => ({ target: p.target, gpuFit: fitOf(p.shape) })),
  };
  if (v.json) {
    out.write(`${JSON.stringify(listing, null, 2)}\n`);
    return 0;
  }
  out.write(`GPU: ${describeGpu(gpu)}${gpu.found ? `; fits are for ${budgetTokens.toLocaleString('en-US')} tokens of workspace` : ''}\n`);
  const models = listing.models;
  if (models.length === 0) {
    out.write(`no models found (looked in ${hubCacheDir()}, LM Studio's and llama.cpp's folders, Ollama's store${v.dir ? ` and ${v.dir.join(', ')}` : ''})\n`);
    return 0;
  }
  const rows = models.map((m) => [
    m.name, m.source, m.format, m.quantisation ?? '?', formatBytes(m.sizeBytes), m.architecture ?? '?',
    m.parameters ? formatCount(m.parameters) : '?',
    m.loadable ? 'yes' : 'no', m.hasCskvFactors ? 'yes' : 'no', fitCell(m.gpuFit),
  ]);
  const header = ['name', 'source', 'format', 'type', 'size', 'architecture', 'params', 'loads', 'cskv', 'gpu'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  out.write(`${line(header)}\n`);
  models.forEach((m, i) => {
    out.write(`${line(rows[i]!)}\n    ${m.path}\n`);
    if (m.reason) out.write(`    cannot load: ${m.reason}\n`);
    if (m.gpuFit && (m.gpuFit.verdict !== 'fits' || m.gpuFit.weights !== 'bf16')) out.write(`    ${describeFit(m.gpuFit)}\n`);
  });
  return 0;
}

/** The fit of a found model; undefined when its shape cannot be read (discovery already says why it would not load). */
function fitOfModel(modelPath: string, fitOf: (shape: PresetShape) => GpuFit | undefined): GpuFit | undefined {
  try {
    return fitOf(readModelConfig(modelPath));
  } catch {
    return undefined;
  }
}

/** 7.6B, 494M, 105K: parameter counts as model cards write them. */
function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${Math.round(n / 1e6)}M`;
  return `${Math.round(n / 1e3)}K`;
}
