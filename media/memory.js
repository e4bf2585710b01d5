// @ts-check
// The KV memory view: totals against a full fp16 cache, a chart of memory over time, per-layer bars of the full and
// compressed branches, GPU memory on CUDA, and the files resident in the context. Mirrors the one message of
// src/extension/memoryPanel.ts. Everything is drawn with DOM/SVG elements and theme colours (memory.css).
import {
  backendLabel, formatCount, formatDuration, formatSavings, gpuEngineBytes, gpuEngineParts, noGpuMemoryReason, plural, progressPercent, shortReason, speedSummary, webgpuBytes, webgpuParts,
} from '../src/extension/format';
import { formatBytes } from '../src/shared/formatBytes';
import { adapterLine, describeAdapter } from '../src/shared/gpuAdapter';

// @ts-ignore acquireVsCodeApi is defined by the webview host
const vscode = acquireVsCodeApi();

/** @typedef {import('../src/extension/webviewMessages').ToMemoryWebview} ToMemoryWebview */
/** @typedef {import('../src/extension/webviewMessages').FromMemoryWebview} FromMemoryWebview */

/** @param {FromMemoryWebview} message */
function post(message) {
  vscode.postMessage(message);
}
const SVG = 'http://www.w3.org/2000/svg';

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const stateEl = byId('state');
const totalsEl = byId('totals');
const chartEl = byId('chart');
const legendEl = byId('legend');
const layersEl = byId('layers');
const filesEl = byId('files');

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {string} [className] @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** @param {string} tag @param {Record<string, string | number>} attrs */
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** @param {string} label @param {Extract<FromMemoryWebview, { type: 'command' }>['command']} command */
function commandButton(label, command) {
  const b = el('button', 'secondary', label);
  b.type = 'button';
  b.addEventListener('click', () => post({ type: 'command', command }));
  return b;
}

/** @param {any} view */
function renderState(view) {
  stateEl.replaceChildren();
  const m = view.memory;
  const title = el('h1', undefined, 'KV cache memory');
  const line = el('p', 'state-line');
  switch (view.state) {
    case 'ready':
      line.textContent = m ? `Ready · ${m.adapter ? `webgpu on ${adapterLine(m.adapter)}` : backendLabel(m.backend)} · ${m.model}` : 'Ready';
      // Why this backend (and adapter) on hover.
      if (m) line.title = m.backendReason;
      break;
    case 'indexing':
      line.textContent = view.progress && view.progress.total > 0
        ? `Indexing the workspace: ${progressPercent(view.progress)}% (${formatCount(view.progress.done)} of ${formatCount(view.progress.total)} tokens, about ${formatDuration(view.progress.etaSeconds)} left)`
        : `Indexing: ${view.message}`;
      break;
    case 'no-model':
      line.textContent = 'No model is configured.';
      line.className = 'state-line warning';
      line.append(' ', commandButton('Select Model', 'cskv.selectModel'));
      break;
    case 'failed':
      line.textContent = `The model could not run: ${view.message}`;
      line.className = 'state-line error';
      line.append(el('br'), commandButton('Retry', 'cskv.restartSidecar'), commandButton('Select Model', 'cskv.selectModel'), commandButton('Open Log', 'cskv.showLog'));
      break;
    case 'stopped':
      line.textContent = `cskv-code is stopped${view.message && view.message !== 'stopped' ? `: ${view.message}` : '.'}`;
      line.className = 'state-line warning';
      line.append(' ', commandButton('Start', 'cskv.restartSidecar'));
      break;
    default:
      line.textContent = `${view.state === 'loading-model' ? 'Loading the model' : 'Starting'}${view.message ? `: ${view.message}` : ''}…`;
  }
  if (!view.trusted) line.append(el('br'), 'This workspace is not trusted, so its files are not read into the model.');
  stateEl.append(title, line);
}

/** @param {any} m @param {any} view */
function renderTotals(m, view) {
  totalsEl.replaceChildren();
  if (!m) return;
  const kv = m.kv;
  /** @param {string} label @param {string} value @param {string} [detail] @param {string} [cls] */
  const card = (label, value, detail, cls) => {
    const c = el('div', `card${cls ? ` ${cls}` : ''}`);
    c.append(el('div', 'card-label', label), el('div', 'card-value', value));
    if (detail) c.append(el('div', 'card-detail', detail));
    totalsEl.append(c);
  };
  card('KV cache held', formatBytes(kv.totalBytes), `${formatSavings(kv.savings)} against fp16`, 'total');
  card('Full fp16 cache would take', formatBytes(kv.fp16Bytes), `${formatCount(kv.tokens)} tokens × ${kv.perLayer.length} layers`, 'fp16');
  card('Recent tokens, full precision', formatBytes(kv.fullBytes), `${plural(kv.fullTokens, 'token')} (${kv.fullDtype === 'f32' ? '32-bit' : '16-bit'} float)`, 'full');
  card('Compressed branch', kv.bits === null ? 'off' : formatBytes(kv.compressedBytes),
    kv.bits === null ? 'no CSKV factors for this model' : `${plural(kv.compressedTokens, 'token')} · ${kv.bits}-bit · window ${kv.window} (the recent tokens kept in full)`, 'compressed');
  card('Workspace resident', plural(m.residentTokens, 'token'), `${plural(m.residentFiles.length, 'file')}, ${formatCount(m.excludedFiles.length)} left out` +
    (m.paused ? `; update paused, ${plural(m.paused.pendingFiles.length, 'file')} not in the context (Rebuild Workspace Context resumes)` : ''));
  if (m.gpu) {
    card('GPU memory', `${formatBytes(m.gpu.usedBytes)} used`, `of ${formatBytes(m.gpu.totalBytes)} · ${formatBytes(m.gpu.freeBytes)} free (every process on the GPU)`, 'gpu');
    if (m.gpu.engine) card('This model on the GPU', formatBytes(gpuEngineBytes(m.gpu.engine)), gpuEngineParts(m.gpu.engine), 'gpu');
  } else if (m.adapter) {
    card('GPU adapter', m.adapter.name, describeAdapter(m.adapter), 'gpu');
    /** @type {HTMLElement} */ (totalsEl.lastElementChild).title = m.backendReason;
    if (m.webgpu) card('This model on the GPU', formatBytes(webgpuBytes(m.webgpu)), webgpuParts(m.webgpu), 'gpu');
  } else if (m.backend === 'onnx') {
    card('GPU memory', '—', shortReason(m.backendReason));
    // The loader's full text on hover, not as the card.
    /** @type {HTMLElement} */ (totalsEl.lastElementChild).title = m.backendReason;
  } else {
    card('GPU memory', '—', noGpuMemoryReason(m.backend));
  }
  if (view.speed?.answer) card('Answers', speedSummary(view.speed.answer).split(' · ')[0] ?? '', `last answer: ${speedSummary(view.speed.answer)}`, 'speed');
  if (view.speed?.completion) card('Completions', speedSummary(view.speed.completion).split(' · ')[0] ?? '', `last completion: ${speedSummary(view.speed.completion)}`, 'speed');
}

const LEGEND = [
  { label: 'fp16 baseline', cls: 'series-fp16' },
  { label: 'KV total', cls: 'series-total' },
  { label: 'full window', cls: 'area-full' },
  { label: 'compressed branch', cls: 'area-compressed' },
];

/** "45 s ago", "3 min ago" @param {number} ms */
function ago(ms) {
  const s = Math.round(ms / 1000);
  return s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

/** Stacked areas (compressed branch below, full window above: their top edge is the total) against the fp16 line.
 * @param {any[]} samples */
function renderChart(samples) {
  chartEl.replaceChildren();
  if (samples.length === 0) {
    chartEl.append(el('p', 'muted', 'No samples yet: the chart starts when the sidecar reports its memory.'));
    return;
  }
  const W = 640, H = 200, left = 64, right = 8, top = 8, bottom = 24;
  const t1 = samples[samples.length - 1].t;
  const t0 = Math.min(samples[0].t, t1 - 60_000);
  const max = Math.max(1, ...samples.map((s) => Math.max(s.fp16Bytes, s.totalBytes))) * 1.05;
  const x = (/** @type {number} */ t) => left + ((t - t0) / Math.max(1, t1 - t0)) * (W - left - right);
  const y = (/** @type {number} */ v) => top + (1 - v / max) * (H - top - bottom);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'KV memory over time' });
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(svg('line', { x1: left, x2: W - right, y1: y(max * f), y2: y(max * f), class: 'grid' }));
    const label = svg('text', { x: left - 6, y: y(max * f) + 4, class: 'axis', 'text-anchor': 'end' });
    label.textContent = formatBytes(max * f);
    root.append(label);
  }
  const startLabel = svg('text', { x: left, y: H - 6, class: 'axis' });
  startLabel.textContent = ago(t1 - t0);
  const endLabel = svg('text', { x: W - right, y: H - 6, class: 'axis', 'text-anchor': 'end' });
  endLabel.textContent = 'now';
  root.append(startLabel, endLabel);
  // A single sample still shows, as a flat stretch from the left edge.
  const points = samples.length === 1 ? [{ ...samples[0], t: t0 }, samples[0]] : samples;
  /** @param {(p: any) => number} value */
  const line = (value) => points.map((p) => `${x(p.t).toFixed(1)},${y(value(p)).toFixed(1)}`);
  const baseline = [`${x(points[points.length - 1].t).toFixed(1)},${y(0).toFixed(1)}`, `${x(points[0].t).toFixed(1)},${y(0).toFixed(1)}`];
  const compressedTop = line((p) => p.compressedBytes);
  root.append(svg('polygon', { points: [...compressedTop, ...baseline].join(' '), class: 'area area-compressed' }));
  const totalTop = line((p) => p.compressedBytes + p.fullBytes);
  root.append(svg('polygon', { points: [...totalTop, ...[...compressedTop].reverse()].join(' '), class: 'area area-full' }));
  root.append(svg('polyline', { points: line((p) => p.fp16Bytes).join(' '), class: 'line series-fp16' }));
  root.append(svg('polyline', { points: totalTop.join(' '), class: 'line series-total' }));
  chartEl.append(root);
  const legend = el('div', 'legend');
  for (const s of LEGEND) {
    const item = el('span', 'legend-item');
    item.append(el('span', `swatch ${s.cls}`), s.label);
    legend.append(item);
  }
  chartEl.append(legend);
}

/** @param {any} m */
function renderLayers(m) {
  layersEl.replaceChildren();
  legendEl.replaceChildren();
  if (!m) {
    layersEl.append(el('p', 'muted', 'Per-layer figures appear once the model is loaded.'));
    return;
  }
  const kv = m.kv;
  const layers = kv.perLayer;
  const fp16PerLayer = layers.length ? kv.fp16Bytes / layers.length : 0;
  const scale = Math.max(1, fp16PerLayer, ...layers.map((/** @type {any} */ l) => l.fullBytes + l.compressedBytes));
  for (const [cls, label] of [['full', 'full window'], ['compressed', 'compressed branch'], ['fp16', 'fp16 per layer']]) {
    const item = el('span', 'legend-item');
    item.append(el('span', `swatch bar-${cls}`), label);
    legendEl.append(item);
  }
  layers.forEach((/** @type {any} */ l, /** @type {number} */ i) => {
    const row = el('div', 'layer');
    row.title = `layer ${i}: full ${formatBytes(l.fullBytes)}, compressed ${formatBytes(l.compressedBytes)}; fp16 would be ${formatBytes(fp16PerLayer)}`;
    const name = el('span', 'layer-name', `L${i}`);
    const track = el('div', 'track');
    const full = el('div', 'bar bar-full');
    full.style.width = `${(l.fullBytes / scale) * 100}%`;
    const compressed = el('div', 'bar bar-compressed');
    compressed.style.width = `${(l.compressedBytes / scale) * 100}%`;
    const fp16 = el('div', 'fp16-mark');
    fp16.style.left = `${(fp16PerLayer / scale) * 100}%`;
    track.append(full, compressed, fp16);
    const value = el('span', 'layer-value', formatBytes(l.fullBytes + l.compressedBytes));
    row.append(name, track, value);
    layersEl.append(row);
  });
}

/** @param {any} m */
function renderFiles(m) {
  filesEl.replaceChildren();
  if (!m || (m.residentFiles.length === 0 && m.excludedFiles.length === 0)) return;
  const details = el('details');
  details.append(el('summary', undefined, `Resident files (${formatCount(m.residentFiles.length)})`));
  const list = el('ol', 'files');
  for (const f of [...m.residentFiles].sort((a, b) => b.tokens - a.tokens).slice(0, 200)) {
    const li = el('li');
    li.append(el('span', 'file-path', f.path), el('span', 'file-tokens', `${formatCount(f.tokens)} tokens`));
    list.append(li);
  }
  details.append(list);
  filesEl.append(details);
  if (m.excludedFiles.length) {
    const left = el('details');
    /** @type {Record<string, number>} */
    const byReason = {};
    for (const f of m.excludedFiles) byReason[f.reason] = (byReason[f.reason] ?? 0) + 1;
    left.append(el('summary', undefined, `Left out (${Object.entries(byReason).map(([r, n]) => `${n} ${r}`).join(', ')})`));
    const l = el('ol', 'files');
    for (const f of m.excludedFiles.slice(0, 200)) {
      const li = el('li');
      li.append(el('span', 'file-path', f.path), el('span', 'file-tokens', f.reason));
      l.append(li);
    }
    left.append(l);
    filesEl.append(left);
  }
}

window.addEventListener('message', (event) => {
  // Only the extension posts to this webview; its messages are ToMemoryWebview.
  const m = /** @type {ToMemoryWebview} */ (event.data);
  if (m.type !== 'update') return;
  renderState(m.view);
  renderTotals(m.view.memory, m.view);
  renderChart(m.samples);
  renderLayers(m.view.memory);
  renderFiles(m.view.memory);
});

post({ type: 'ready' });
