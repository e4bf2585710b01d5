// What every command shares: engine flags, argument checks, the usage error, and formatting.
import * as path from 'node:path';
import { BACKEND_CHOICES, type BackendChoice, loadEngineFor, resolveCskv } from '../backends/selectBackend';
import type { CompressedBits } from '../cache/quantizer';
import type { Engine } from '../engine';

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
  'prompt-ids': { type: 'string' },
} as const;

export type EngineFlags = { model?: string; backend?: string; cskv?: string; window?: string; bits?: string; chunk?: string };

/** Loads the engine on the backend of --backend (default auto); says which and why on `log` (stderr). */
export async function loadEngine(v: EngineFlags, log?: NodeJS.WritableStream): Promise<Engine> {
  if (!v.model) throw new UsageError('--model DIR is required');
  const model = path.resolve(v.model);
  const bits = optionalInt(v.bits, '--bits');
  if (bits !== undefined && ![16, 8, 4, 2].includes(bits)) throw new UsageError(`--bits must be 16, 8, 4 or 2, got ${bits}`);
  const { engine, reason } = await loadEngineFor(parseBackend(v.backend), model, {
    cskv: resolveCskv(v.cskv, model),
    window: optionalInt(v.window, '--window'),
    bits: bits as CompressedBits | undefined,
    chunkSize: optionalInt(v.chunk, '--chunk'),
  });
  log?.write(`cskv-code: backend ${reason}\n`);
  return engine;
}

export function parseBackend(value: string | undefined): BackendChoice {
  if (value === undefined) return 'auto';
  if (!(BACKEND_CHOICES as readonly string[]).includes(value)) throw new UsageError(`--backend must be ${BACKEND_CHOICES.join(', ')}, got "${value}"`);
  return value as BackendChoice;
}

export function optionalInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

export function parseIds(value: string): number[] {
  const ids = value.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) throw new UsageError(`--prompt-ids must be comma-separated token ids, got "${value}"`);
  return ids;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
