// Text the extension shows about the sidecar and its memory: the status bar item, its tooltip, the memory view's
// figures. Pure functions (no vscode import), so the unit tests run without VS Code.
import type { GenerationSpeed, GpuEngineMemory, GpuMemory, MemoryStatus, PrefillProgress, SidecarState, WebGpuMemory } from '../protocol';
import { formatBytes } from '../shared/formatBytes';
import { adapterLine } from '../shared/gpuAdapter';

/** What the status bar reflects: the sidecar's state plus the two the extension adds. */
export type ViewState = SidecarState | 'no-model';

export interface StatusView {
  state: ViewState;
  message: string;
  progress?: PrefillProgress | undefined;
  memory?: MemoryStatus | undefined;
  /** False in an untrusted workspace (the workspace is not read into the model). */
  trusted: boolean;
  /** While indexing after the workspace was resident once: the files edited since (a quiet update, not a re-index). */
  updating?: string[] | undefined;
  /** How fast the last answer and the last completion came. */
  speed?: { answer?: GenerationSpeed | undefined; completion?: GenerationSpeed | undefined } | undefined;
}

/** `24.1 tokens/s · first token after 850 ms` (or `1.2 s`). */
export function speedSummary(s: GenerationSpeed): string {
  const first = s.firstTokenMs < 1000 ? `${Math.round(s.firstTokenMs)} ms` : `${(s.firstTokenMs / 1000).toFixed(1)} s`;
  const rate = s.tokensPerSecond > 0 ? `${s.tokensPerSecond.toFixed(1)} tokens/s · ` : '';
  return `${rate}first token after ${first}`;
}

/** The backend's reason without the loader's details: "onnx (CPU): CUDA unavailable" (the rest is in the tooltip and the log). */
export function shortReason(reason: string): string {
  return reason.split(/:\s/).slice(0, 2).join(': ');
}

/** `1 token`, `2 tokens`, `12,345 tokens`. */
export function plural(n: number, word: string): string {
  return `${formatCount(n)} ${Math.round(n) === 1 ? word : `${word}s`}`;
}

/** Whether the state is an update after an edit: the KV figure stays and answers use what is resident. */
export function isUpdate(view: StatusView): boolean {
  return view.state === 'indexing' && view.updating !== undefined && view.memory !== undefined;
}

/** Whether the update after an edit was stopped (cskv: Stop Updating): the files not in the context are listed in
 * the memory status, answers use what is resident, and Rebuild Context resumes. */
export function isPaused(view: StatusView): boolean {
  return view.state === 'ready' && view.memory?.paused !== undefined;
}

/** The commands the status bar tooltip links to (and the only ones its Markdown may run). */
export const TOOLTIP_COMMANDS = ['cskv.stopUpdating', 'cskv.rebuildContext'] as const;

/** `update paused: 2 files not in the context (a.ts, b.ts)`; at most five names, then how many more. */
export function pausedSummary(view: StatusView): string {
  const pending = view.memory?.paused?.pendingFiles ?? [];
  const shown = pending.slice(0, 5).join(', ') + (pending.length > 5 ? `, and ${formatCount(pending.length - 5)} more` : '');
  return `update paused: ${plural(pending.length, 'file')} not in the context${pending.length > 0 ? ` (${shown})` : ''}`;
}

/** `updating 1 file`, or `updating` when the change came from outside the editor. */
export function updateSummary(view: StatusView): string {
  const n = view.updating?.length ?? 0;
  return n > 0 ? `updating ${plural(n, 'file')}` : 'updating';
}

/** The saving against a full fp16 cache as the status bar writes it: −82% (smaller) or +100% (larger). */
export function formatSavings(savings: number): string {
  const percent = Math.round(Math.abs(savings) * 100);
  if (percent === 0) return '±0%';
  return savings > 0 ? `\u2212${percent}%` : `+${percent}%`;
}

/** `KV 1.4 GB · −82%`: bytes held by the cache and the saving against fp16 (left out while nothing is held). */
export function kvSummary(memory: MemoryStatus): string {
  const kv = memory.kv;
  if (kv.tokens === 0) return `KV ${formatBytes(kv.totalBytes)}`;
  return `KV ${formatBytes(kv.totalBytes)} · ${formatSavings(kv.savings)}`;
}

/** The backend as the memory view's state line names it: `cuda (GPU)`, `webgpu (GPU)`, `onnx (CPU)`. */
export function backendLabel(backend: MemoryStatus['backend']): string {
  return backend === 'onnx' ? 'onnx (CPU)' : `${backend} (GPU)`;
}

/** `20.0 GB used of 80.0 GB (60.0 GB free)`: the whole device, every process on it counted. */
export function gpuDeviceSummary(gpu: GpuMemory): string {
  return `${formatBytes(gpu.usedBytes)} used of ${formatBytes(gpu.totalBytes)} (${formatBytes(gpu.freeBytes)} free)`;
}

/** What the engine holds on the GPU: weights + the cache's reserved pages + scratch. */
export function gpuEngineBytes(engine: GpuEngineMemory): number {
  return engine.weightBytes + engine.cacheReservedBytes + engine.scratchBytes;
}

/** `weights 15.2 GB, KV cache 2.0 GB reserved, scratch 96.0 MB`. */
export function gpuEngineParts(engine: GpuEngineMemory): string {
  return `weights ${formatBytes(engine.weightBytes)}, KV cache ${formatBytes(engine.cacheReservedBytes)} reserved, scratch ${formatBytes(engine.scratchBytes)}`;
}

/** What the WebGPU backend holds on the GPU, by the engine's count: weights + the cache's copies + scratch. */
export function webgpuBytes(w: WebGpuMemory): number {
  return w.weightBytes + w.fullBytes + w.pendingBytes + w.compressedBytes + w.scratchBytes;
}

/** `weights 1.0 GB, cache 36.0 MB (full 4.0 MB, pending features 1.0 MB, compressed 31.0 MB), scratch ~8.0 MB (estimated)`. */
export function webgpuParts(w: WebGpuMemory): string {
  const cache = w.fullBytes + w.pendingBytes + w.compressedBytes;
  return `weights ${formatBytes(w.weightBytes)}, cache ${formatBytes(cache)} (full ${formatBytes(w.fullBytes)}, pending features ${formatBytes(w.pendingBytes)}, ` +
    `compressed ${formatBytes(w.compressedBytes)}), scratch ~${formatBytes(w.scratchBytes)} (estimated)`;
}

/** Why there are no GPU figures: the CPU backend is not on a GPU; WebGPU does not report memory; CUDA always should. */
export function noGpuMemoryReason(backend: MemoryStatus['backend']): string {
  switch (backend) {
    case 'onnx': return 'not on a GPU';
    case 'webgpu': return 'WebGPU does not report it';
    case 'cuda': return 'not reported';
  }
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '…';
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function progressPercent(progress: PrefillProgress): number {
  if (progress.total <= 0) return 100;
  return Math.min(100, Math.floor((progress.done / progress.total) * 100));
}

/** The status bar text, codicons included. */
export function statusText(view: StatusView): string {
  const lock = view.trusted ? '' : ' $(workspace-untrusted)';
  switch (view.state) {
    case 'no-model':
      return '$(circle-slash) cskv: no model';
    case 'starting':
      return '$(loading~spin) cskv: starting';
    case 'loading-model':
      return '$(loading~spin) cskv: loading model';
    case 'indexing':
      if (isUpdate(view)) return `$(database) ${kvSummary(view.memory!)} $(sync~spin) ${updateSummary(view)}${lock}`;
      if (view.progress && view.progress.total > 0) return `$(loading~spin) cskv: indexing ${progressPercent(view.progress)}%${lock}`;
      return `$(loading~spin) cskv: indexing${lock}`;
    case 'ready':
      if (isPaused(view)) return `$(database) ${kvSummary(view.memory!)} $(debug-pause) update paused${lock}`;
      return view.memory ? `$(database) ${kvSummary(view.memory)}${lock}` : `$(database) cskv: ready${lock}`;
    case 'failed':
      return '$(error) cskv: failed';
    case 'stopped':
      return '$(debug-stop) cskv: stopped';
  }
}

/** The tooltip as Markdown: the state, then the cache split, tokens, backend and GPU once there is a model. */
export function statusTooltip(view: StatusView): string {
  const lines: string[] = [`**cskv-code** — ${stateSentence(view)}`, ''];
  if (!view.trusted) {
    lines.push('$(workspace-untrusted) This workspace is not trusted, so its files are not read into the model. Trust it to get answers and completions with the workspace as context.', '');
  }
  const m = view.memory;
  if (m) {
    const kv = m.kv;
    const compressed = kv.bits === null ? 'off (no CSKV factors)' :
      `${formatBytes(kv.compressedBytes)} · ${plural(kv.compressedTokens, 'token')} (${kv.bits}-bit)`;
    lines.push(
      '| | |',
      '|:--|:--|',
      `| KV cache | ${formatBytes(kv.totalBytes)} (${formatSavings(kv.savings)} vs ${formatBytes(kv.fp16Bytes)} fp16) |`,
      `| Recent tokens, full precision | ${formatBytes(kv.fullBytes)} · ${plural(kv.fullTokens, 'token')} (${dtypeLabel(kv.fullDtype)}${kv.window !== null ? `; the last ${plural(kv.window, 'token')} stay uncompressed` : ''}) |`,
      `| Older tokens, compressed | ${compressed} |`,
      `| Workspace resident | ${plural(m.residentTokens, 'token')} in ${plural(m.residentFiles.length, 'file')} |`,
      `| Backend | ${escapeTableCell(m.backendReason)} |`,
      ...(m.adapter ? [`| GPU adapter | ${escapeTableCell(adapterLine(m.adapter))} |`] : []),
      ...(view.speed?.answer ? [`| Last answer | ${speedSummary(view.speed.answer)} |`] : []),
      ...(view.speed?.completion ? [`| Last completion | ${speedSummary(view.speed.completion)} |`] : []),
      // The WebGPU adapter's row carries what is known of its memory (WebGPU reports no usage).
      ...(m.adapter && !m.gpu ? [] : [`| GPU memory | ${m.gpu ? gpuDeviceSummary(m.gpu) : `— (${noGpuMemoryReason(m.backend)})`} |`]),
      ...(m.gpu?.engine ? [`| This model on the GPU | ${formatBytes(gpuEngineBytes(m.gpu.engine))}: ${gpuEngineParts(m.gpu.engine)} |`] : []),
      ...(m.webgpu ? [`| This model on the GPU | ${formatBytes(webgpuBytes(m.webgpu))}: ${webgpuParts(m.webgpu)} |`] : []),
      '',
    );
  }
  // Links run only the commands in TOOLTIP_COMMANDS (the status bar trusts the tooltip for those alone).
  if (isUpdate(view)) lines.push(`[$(debug-stop) Stop updating](command:${TOOLTIP_COMMANDS[0]} "Stop reading the edited files; what is resident stays in use")`, '');
  if (isPaused(view)) lines.push(`[$(refresh) Rebuild Workspace Context](command:${TOOLTIP_COMMANDS[1]} "Read the workspace into the model again") to resume the update.`, '');
  lines.push(view.state === 'no-model' ? 'Click to choose a model.' : 'Click to open the KV memory view.');
  return lines.join('\n');
}

/** The state in a sentence for the tooltip and the chat's banner: numbers with separators, right plurals. */
export function stateSentence(view: StatusView): string {
  switch (view.state) {
    case 'ready':
      if (isPaused(view)) {
        return `${pausedSummary(view)}. Answers use the ${plural(view.memory!.residentTokens, 'token')} resident; Rebuild Workspace Context resumes the update`;
      }
      if (view.memory && view.trusted) {
        return `ready: ${plural(view.memory.residentTokens, 'token')} of the workspace resident in ${plural(view.memory.residentFiles.length, 'file')}`;
      }
      return view.message ? `ready: ${view.message}` : 'ready';
    case 'no-model':
      return 'no model configured (setting cskv.modelPath)';
    case 'indexing':
      if (isUpdate(view)) {
        const files = view.updating!.length > 0 ? ` (${view.updating!.join(', ')})` : '';
        const p = view.progress;
        const left = p && p.total > p.done ? `: ${plural(p.total - p.done, 'token')} left` + (p.tokensPerSecond > 0 ? `, about ${formatDuration(p.etaSeconds)}` : '') : '';
        return `${updateSummary(view)}${files}${left}. Answers use what is resident meanwhile`;
      }
      if (view.progress && view.progress.total > 0) {
        const p = view.progress;
        return `indexing the workspace: ${formatCount(p.done)} of ${formatCount(p.total)} tokens` +
          (p.tokensPerSecond > 0 ? `, ${formatCount(p.tokensPerSecond)} tokens/s, about ${formatDuration(p.etaSeconds)} left` : '');
      }
      return `indexing: ${view.message}`;
    default:
      return view.message ? `${view.state}: ${view.message}` : view.state;
  }
}

/** `f32` as a person reads it. */
function dtypeLabel(dtype: string): string {
  const bits = /^[fb]f?(\d+)$/.exec(dtype)?.[1];
  if (!bits) return dtype;
  return dtype.startsWith('bf') ? `${bits}-bit bfloat` : `${bits}-bit float`;
}

/** Text safe inside a Markdown table cell: no pipe ends the cell, no newline ends the row. */
function escapeTableCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}
