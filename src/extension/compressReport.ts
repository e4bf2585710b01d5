// What Compress Model reports in the UI: the saving in a sentence for the notification, and the per-layer table
// as Markdown for a preview. Reads the JSON line of `cskv-code compress --json`. Pure: no vscode import.

export interface CompressLayer {
  layer: number;
  rK: number;
  rV: number;
  retainedK: number;
  retainedV: number;
  heldOutErrorK: number;
  heldOutErrorV: number;
}

export interface CompressResult {
  file: string;
  density: number;
  bits: number;
  window: number;
  calibrationTokens: number;
  files: number;
  bytesPerToken: number;
  fp16BytesPerToken: number;
  savings: number;
  layers: CompressLayer[];
}

/** The result from the command's output (the last line that is a JSON object); undefined when there is none. */
export function parseCompressResult(stdout: string): CompressResult | undefined {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const value = JSON.parse(lines[i]!) as Partial<CompressResult>;
      if (typeof value.savings === 'number' && Array.isArray(value.layers)) return value as CompressResult;
    } catch {
      // not the result line
    }
  }
  return undefined;
}

const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** `79.7% saved: 130.0 bytes per token instead of 640 (16-bit, density 0.2)`. */
export function compressSummary(r: CompressResult): string {
  return `${percent(r.savings)} of the KV cache saved: ${r.bytesPerToken.toFixed(1)} bytes per token instead of ` +
    `${Math.round(r.fp16BytesPerToken).toLocaleString('en-US')} (${r.bits}-bit, density ${r.density})`;
}

/** The report as Markdown: the summary, what it was calibrated on, and the per-layer table. */
export function compressMarkdown(r: CompressResult): string {
  const err = (x: number): string => (Number.isFinite(x) ? x.toFixed(4) : '–');
  return [
    '# cskv-code: compression result',
    '',
    `**${compressSummary(r)}.**`,
    '',
    `Calibrated on ${r.calibrationTokens.toLocaleString('en-US')} tokens from ${r.files.toLocaleString('en-US')} ${r.files === 1 ? 'file' : 'files'}; ` +
      `the last ${r.window.toLocaleString('en-US')} tokens stay uncompressed. Written to \`${r.file}\`.`,
    '',
    '| Layer | Key rank | Value rank | Key energy kept | Value energy kept | Held-out error (keys) | Held-out error (values) |',
    '|--:|--:|--:|--:|--:|--:|--:|',
    ...r.layers.map((l) => `| ${l.layer} | ${l.rK} | ${l.rV} | ${percent(l.retainedK)} | ${percent(l.retainedV)} | ${err(l.heldOutErrorK)} | ${err(l.heldOutErrorV)} |`),
    '',
  ].join('\n');
}
