// Text the extension shows about the sidecar and its memory: the status bar item, its tooltip, the memory view's
// figures. Pure functions (no vscode import), so the unit tests run without VS Code.
import type { MemoryStatus, PrefillProgress, SidecarState } from '../protocol';
import { formatBytes } from '../shared/formatBytes';

/** What the status bar reflects: the sidecar's state plus the two the extension adds. */
export type ViewState = SidecarState | 'no-model';

export interface StatusView {
  state: ViewState;
  message: string;
  progress?: PrefillProgress | undefined;
  memory?: MemoryStatus | undefined;
  /** False in an untrusted workspace (the workspace is not read into the model). */
  trusted: boolean;
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
      if (view.progress && view.progress.total > 0) return `$(loading~spin) cskv: indexing ${progressPercent(view.progress)}%${lock}`;
      return `$(loading~spin) cskv: indexing${lock}`;
    case 'ready':
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
      `${formatBytes(kv.compressedBytes)} · ${formatCount(kv.compressedTokens)} tokens (${kv.bits}-bit, window ${kv.window})`;
    lines.push(
      '| | |',
      '|:--|:--|',
      `| KV cache | ${formatBytes(kv.totalBytes)} (${formatSavings(kv.savings)} vs ${formatBytes(kv.fp16Bytes)} fp16) |`,
      `| Full window | ${formatBytes(kv.fullBytes)} · ${formatCount(kv.fullTokens)} tokens (${kv.fullDtype}) |`,
      `| Compressed branch | ${compressed} |`,
      `| Tokens resident | ${formatCount(m.residentTokens)} in ${formatCount(m.residentFiles.length)} files |`,
      `| Backend | ${escapeTableCell(m.backendReason)} |`,
      `| GPU memory | ${m.gpu ? `${formatBytes(m.gpu.usedBytes)} used of ${formatBytes(m.gpu.totalBytes)} (${formatBytes(m.gpu.freeBytes)} free)` : '— (not on a GPU)'} |`,
      '',
    );
  }
  lines.push(view.state === 'no-model' ? 'Click to choose a model folder.' : 'Click to open the KV memory view.');
  return lines.join('\n');
}

function stateSentence(view: StatusView): string {
  switch (view.state) {
    case 'no-model':
      return 'no model configured (setting cskv.modelPath)';
    case 'indexing':
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

/** Text safe inside a Markdown table cell: no pipe ends the cell, no newline ends the row. */
function escapeTableCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}
