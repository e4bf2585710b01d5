// cskv-code compress: calibrates CSKV factors for a model on text (a workspace by default) and writes
// cskv.safetensors, printing per layer the ranks, the variance kept and the error on held-out tokens.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { CompressedBits } from '../../protocol';
import { blockBytes } from '../../runtime/cache/quantizer';
import { type CalibrationResult, type Initialisation, type Rotation, calibrate } from '../../calibration/calibrate';
import { collectCalibrationFiles, tokeniseForCalibration } from '../../calibration/calibrationText';
import { writeCskvFactors } from '../../runtime/cskvFile';
import { rankBudget } from '../../calibration/rankAllocation';
import { RuntimeError } from '../../runtime/errors';
import { ModelTokenizer } from '../../runtime/tokenizer';
import { formatBytes } from '../../shared/formatBytes';
import { DEFAULTS } from '../../shared/settings';
import { type CommandIO, UsageError, loadEngine, optionalBits, optionalInt } from './shared';
import { defaultCskvFile } from '../../runtime/model/modelPath';

const DEFAULT_TOKENS = 65536;
const DEFAULT_SEGMENT = 512;
const HELD_OUT_FRACTION = 0.1;
/** Statistics for Qwen2.5-7B (28 layers, D = 512) take 117 MB and fit at once; Llama-2-7B's (D = 4096) take passes. */
const DEFAULT_STATISTICS_MB = 512;

/** The flags `cskv-code compress` takes (its usage line in cli.ts names each). */
export const COMPRESS_OPTIONS = {
  model: { type: 'string' },
  backend: { type: 'string' },
  calib: { type: 'string', multiple: true },
  density: { type: 'string' },
  bits: { type: 'string' },
  window: { type: 'string' },
  groups: { type: 'string' },
  tokens: { type: 'string' },
  segment: { type: 'string' },
  init: { type: 'string' },
  rotate: { type: 'string' },
  out: { type: 'string' },
  chunk: { type: 'string' },
  weights: { type: 'string' },
  'statistics-mb': { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function compressCommand(argv: string[], { out, err }: CommandIO): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: COMPRESS_OPTIONS,
  });
  if (!v.model) throw new UsageError('--model DIR is required');
  const modelDir = path.resolve(v.model);
  const density = v.density === undefined ? DEFAULTS.density : Number(v.density);
  if (!(density > 0 && density <= 1)) throw new UsageError(`--density must be a number in (0, 1], got "${v.density}"`);
  const bits = optionalBits(v.bits) ?? DEFAULTS.bits;
  const window = optionalInt(v.window, '--window') ?? DEFAULTS.window;
  const groups = optionalInt(v.groups, '--groups') ?? 1;
  const maxTokens = optionalInt(v.tokens, '--tokens') ?? DEFAULT_TOKENS;
  if (maxTokens < 2) throw new UsageError('--tokens must be at least 2 (some to fit on, some held out)');
  const segmentLength = optionalInt(v.segment, '--segment') ?? DEFAULT_SEGMENT;
  if (segmentLength < 2) throw new UsageError('--segment must be at least 2 tokens');
  const init = (v.init ?? 'closed') as Initialisation;
  if (!['closed', 'svd', 'asvd'].includes(init)) throw new UsageError(`--init must be closed, svd or asvd, got "${v.init}"`);
  const rotate = (v.rotate ?? 'none') as Rotation;
  if (!['none', 'hadamard', 'hadamard-values'].includes(rotate)) throw new UsageError(`--rotate must be none, hadamard or hadamard-values, got "${v.rotate}"`);
  const statisticsMb = v['statistics-mb'] === undefined ? DEFAULT_STATISTICS_MB : Number(v['statistics-mb']);
  if (!(statisticsMb > 0)) throw new UsageError(`--statistics-mb must be a positive number, got "${v['statistics-mb']}"`);
  const outFile = path.resolve(v.out ?? defaultCskvFile(modelDir));
  const calibPaths = [...(v.calib ?? []), ...positionals];
  if (calibPaths.length === 0) calibPaths.push(process.cwd());
  // Checked before the model loads, so a typo fails in milliseconds rather than after a 15 GB read.
  const files = collectCalibrationFiles(calibPaths, [modelDir, outFile], (note) => err.write(`[compress] ${note}\n`));
  const noText = (): RuntimeError => new RuntimeError('BAD_ARGUMENT', `no text files found under ${calibPaths.join(', ')}`);
  if (files.length === 0) throw noText();

  const engine = await loadEngine({ model: modelDir, backend: v.backend, cskv: 'off', chunk: v.chunk, weights: v.weights });
  try {
    const { config } = engine.info;
    if (config.kvHeads % groups !== 0) throw new UsageError(`--groups must divide the model's ${config.kvHeads} kv heads, got ${groups}`);
    if (rankBudget(density, config.layers, config.kvDim) < 2 * config.layers * groups) {
      throw new UsageError(`--density ${density} leaves less than rank 1 per group for every key and value; the least is about ${(groups / config.kvDim).toPrecision(2)}`);
    }
    const tokenizer = ModelTokenizer.load(modelDir, engine.info.config);
    const text = tokeniseForCalibration(files, tokenizer, { maxTokens, segmentLength, heldOutFraction: HELD_OUT_FRACTION });
    if (text.files.length === 0) throw noText();
    if (text.trainTokens === 0) throw new RuntimeError('BAD_ARGUMENT', `the calibration text (${text.files.length} files) holds no tokens`);
    const progress = (line: string): void => void err.write(`[compress] ${line}\n`);
    progress(`${text.trainTokens} calibration + ${text.heldOutTokens} held-out tokens from ${text.files.length} files; ` +
      `${config.layers} layers, D = ${config.kvDim}, density ${density}, init ${init}${groups > 1 ? `, ${groups} groups` : ''}`);
    const result = await calibrate(engine, text.train, text.heldOut, {
      density, groups, init, rotate, window, bits,
      statisticsBudget: statisticsMb * 1024 * 1024,
      spillFile: `${outFile}.directions-${process.pid}.tmp`,
      onProgress: progress,
    });
    writeCskvFactors(outFile, result.layers, {
      window: String(window),
      bits: String(bits),
      density: String(density),
      groups: String(groups),
      init,
      rotate,
      calibration_tokens: String(text.trainTokens),
      heldout_tokens: String(text.heldOutTokens),
      source: describeSource(calibPaths, text.files.length),
      model_fingerprint: engine.info.fingerprint,
      tool: 'cskv-code compress',
    });
    const summary = summarise(result, config.layers, config.kvDim, window, bits);
    if (v.json) {
      out.write(`${JSON.stringify({ file: outFile, density, bits, window, groups, init, rotate, calibrationTokens: text.trainTokens, heldOutTokens: text.heldOutTokens, files: text.files.length, ...summary })}\n`);
    } else {
      out.write(formatTable(summary));
      out.write(`compressed KV cache: ${summary.bytesPerToken.toFixed(1)} bytes/token at ${bits} bits, window ${window} ` +
        `(fp16 cache: ${formatBytes(summary.fp16BytesPerToken)}/token), ${(summary.savings * 100).toFixed(1)}% saved\n`);
      out.write(`wrote ${outFile}\n`);
    }
    return 0;
  } finally {
    await engine.dispose();
  }
}

interface Summary {
  layers: { layer: number; rK: number; rV: number; retainedK: number; retainedV: number; heldOutErrorK: number; heldOutErrorV: number; storedErrorK: number; storedErrorV: number }[];
  /** Compressed-branch bytes per token over all layers, with the quantiser's scale/zero overhead (the cache's own accounting). */
  bytesPerToken: number;
  fp16BytesPerToken: number;
  /** 1 - bytesPerToken / fp16BytesPerToken: what a long context saves (the full branch adds at most W tokens per layer). */
  savings: number;
  passes: number;
}

function summarise(result: CalibrationResult, layers: number, D: number, window: number, bits: CompressedBits): Summary {
  const rows = result.report.map((r) => ({
    layer: r.layer, rK: r.k.features, rV: r.v.features, retainedK: r.k.retained, retainedV: r.v.retained,
    heldOutErrorK: r.k.heldOut.relativeError, heldOutErrorV: r.v.heldOut.relativeError,
    storedErrorK: r.k.heldOut.storedRelativeError, storedErrorV: r.v.heldOut.storedRelativeError,
  }));
  const bytesPerToken = rows.reduce((a, r) => a + blockBytes(window, r.rK, r.rV, bits), 0) / window;
  const fp16BytesPerToken = 2 * layers * D * 2;
  return { layers: rows, bytesPerToken, fp16BytesPerToken, savings: 1 - bytesPerToken / fp16BytesPerToken, passes: result.passes };
}

function formatTable(s: Summary): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const err = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(4));
  const header = ['layer', 'r_k', 'r_v', 'kept K', 'kept V', 'held-out err K', 'held-out err V', 'stored err K', 'stored err V'];
  const lines = s.layers.map((r) => [String(r.layer), String(r.rK), String(r.rV), pct(r.retainedK), pct(r.retainedV),
    err(r.heldOutErrorK), err(r.heldOutErrorV), err(r.storedErrorK), err(r.storedErrorV)]);
  const mean = (f: (r: Summary['layers'][number]) => number): number => s.layers.reduce((a, r) => a + f(r), 0) / s.layers.length;
  lines.push(['mean', mean((r) => r.rK).toFixed(1), mean((r) => r.rV).toFixed(1), pct(mean((r) => r.retainedK)), pct(mean((r) => r.retainedV)),
    err(mean((r) => r.heldOutErrorK)), err(mean((r) => r.heldOutErrorV)), err(mean((r) => r.storedErrorK)), err(mean((r) => r.storedErrorV))]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => `${cells.map((c, i) => c.padStart(widths[i]!)).join('  ')}\n`;
  return row(header) + lines.map(row).join('');
}

/** The calibration paths as the file records them (trimmed: a workspace may be named by many paths). */
function describeSource(paths: readonly string[], files: number): string {
  const listed = paths.map((p) => path.resolve(p)).join(', ');
  return `${files} text files under ${listed.length > 400 ? `${listed.slice(0, 400)}...` : listed}`;
}
