// What every command shares: engine flags, argument checks, the usage error, and formatting.
import * as path from 'node:path';
import { type BackendChoice, loadEngineFor, resolveCskv } from '../../runtime/backends/selectBackend';
import { COMPRESSED_BITS_TEXT, type CompressedBits, isCompressedBits } from '../../protocol';
import type { Engine } from '../../runtime/engine';
import { WEIGHT_FORMATS, type WeightFormat, isWeightFormat } from '../../runtime/model/weightFormat';
import { BACKENDS } from '../../shared/settings';

/** A mistake in the command line: the CLI prints it with the usage and exits with 2. */
export class UsageError extends Error {}

export interface CommandIO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export const engineFlags = {
  model: { type: 'string' },
  backend: { type: 'string' },
  cskv: { type: 'string' },
  window: { type: 'string' },
  bits: { type: 'string' },
  chunk: { type: 'string' },
  weights: { type: 'string' },
  'prompt-ids': { type: 'string' },
} as const;

export type EngineFlags = { model?: string; backend?: string; cskv?: string; window?: string; bits?: string; chunk?: string; weights?: string };

/**
 * `--flag -4` as `--flag=-4`: node's parseArgs refuses a value that starts with a dash as "ambiguous", so a
 * negative number would never reach the flag's own check and its message.
 */
export function attachNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (/^--[^=]+$/.test(arg) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Loads the engine on the backend of --backend (default auto); says which and why on `log` (stderr). */
export async function loadEngine(v: EngineFlags, log?: NodeJS.WritableStream): Promise<Engine> {
  if (!v.model) throw new UsageError('--model DIR is required');
  const model = path.resolve(v.model);
  const { engine, reason } = await loadEngineFor(parseBackend(v.backend), model, {
    cskv: resolveCskv(v.cskv, model),
    window: optionalInt(v.window, '--window'),
    bits: optionalBits(v.bits),
    chunkSize: optionalInt(v.chunk, '--chunk'),
    weights: weightFormat(v.weights),
  });
  log?.write(`cskv-code: backend ${reason}\n`);
  return engine;
}

export function parseBackend(value: string | undefined): BackendChoice {
  if (value === undefined) return 'auto';
  if (!(BACKENDS as readonly string[]).includes(value)) throw new UsageError(`--backend must be ${BACKENDS.join(', ')}, got "${value}"`);
  return value as BackendChoice;
}

export function weightFormat(value: string | undefined): WeightFormat | undefined {
  if (value === undefined) return undefined;
  if (!isWeightFormat(value)) throw new UsageError(`--weights must be ${WEIGHT_FORMATS.join(', ')}, got "${value}"`);
  return value;
}

/** Decimal digits only: Number() would also take "0x10", "1e2" or " 8 ". */
const DECIMAL = /^\d+$/;

export function optionalInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!DECIMAL.test(value) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer in decimal digits, got "${value}"`);
  return n;
}

/** --bits: one of the compressed branch's widths. */
export function optionalBits(value: string | undefined): CompressedBits | undefined {
  const bits = optionalInt(value, '--bits');
  if (bits !== undefined && !isCompressedBits(bits)) throw new UsageError(`--bits must be ${COMPRESSED_BITS_TEXT}, got ${bits}`);
  return bits;
}

export function parseIds(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = parts.find((s) => !DECIMAL.test(s) || !Number.isSafeInteger(Number(s)));
  if (parts.length === 0 || bad !== undefined) {
    throw new UsageError(`--prompt-ids must be comma-separated token ids in decimal digits, got "${value}"${bad !== undefined ? ` ("${bad}")` : ''}`);
  }
  return parts.map(Number);
}
