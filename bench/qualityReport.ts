// The quality benchmark's results: their shape, the goals of issue 4 checked against them, and the table printed
// to the terminal and written as Markdown (docs/quality.md).
import type { FimScore } from './fimExactMatch';
import type { RecallScore } from './longRangeRecall';

export interface SettingResult {
  name: string;
  init: 'closed' | 'svd' | 'asvd' | null;
  rotate: 'none' | 'hadamard' | null;
  density: number | null;
  bits: number | null;
  ranks: { k: number[]; v: number[]; heldOutErrorK: number; heldOutErrorV: number } | null;
  /** Compressed-branch bytes per token over all layers (scale/zero included): what a long context costs. */
  kvBytesPerToken: number;
  /** 1 - kvBytesPerToken / fp16 bytes per token. */
  savings: number;
  perplexity: number;
  /** The runtime's own accounting at the perplexity context (the full-precision window included, in its dtype). */
  kvBytesPerTokenMeasured: number;
  /** null where not measured (baselines, unless asked for). */
  recall: RecallScore[] | null;
  fim: FimScore | null;
  seconds: number;
}

export interface QualityResult {
  benchmark: 'quality';
  quick: boolean;
  date: string;
  device: string;
  model: string;
  modelConfig: { layers: number; kvDim: number; vocab: number };
  heldout: string;
  calibration: string;
  plan: Record<string, unknown>;
  fp16BytesPerToken: number;
  perplexityTokens: number;
  settings: SettingResult[];
  seconds: number;
}

export interface Goal {
  goal: string;
  setting: string | null;
  met: boolean | null;
  detail: string;
}

const recallMean = (r: SettingResult): number => (r.recall ? r.recall.reduce((a, x) => a + x.accuracy, 0) / Math.max(1, r.recall.length) : NaN);

/** Issue 4's goals: at 80% savings (closed form, density 0.2, 16 bits) perplexity within +2% of the full cache and
 *  recall within 2 points; at 95% savings (the best setting saving at least 95%) perplexity within +5%. */
export function goals(result: QualityResult): Goal[] {
  const full = result.settings.find((s) => s.init === null);
  if (!full) return [];
  const dPpl = (s: SettingResult): number => s.perplexity / full.perplexity - 1;
  const dRecall = (s: SettingResult): number => (recallMean(s) - recallMean(full)) * 100;
  const out: Goal[] = [];
  const at80 = result.settings.find((s) => s.init === 'closed' && s.rotate === 'none' && s.density === 0.2 && s.bits === 16);
  out.push(at80
    ? { goal: '80% savings: perplexity <= +2%, recall within 2 points', setting: at80.name, met: dPpl(at80) <= 0.02 && dRecall(at80) >= -2,
      detail: `perplexity ${pct(dPpl(at80))}, recall ${signed(dRecall(at80))} points, savings ${(at80.savings * 100).toFixed(1)}%` }
    : { goal: '80% savings: perplexity <= +2%, recall within 2 points', setting: null, met: null, detail: 'closed d=0.2 16b not run' });
  const at95 = result.settings.filter((s) => s.init !== null && s.savings >= 0.95).sort((a, b) => a.perplexity - b.perplexity)[0];
  out.push(at95
    ? { goal: '95% savings: perplexity <= +5%', setting: at95.name, met: dPpl(at95) <= 0.05,
      detail: `best of ${result.settings.filter((s) => s.savings >= 0.95).length} settings saving >= 95%: perplexity ${pct(dPpl(at95))}, recall ${signed(dRecall(at95))} points, savings ${(at95.savings * 100).toFixed(1)}%` }
    : { goal: '95% savings: perplexity <= +5%', setting: null, met: null, detail: 'no setting saved 95%' });
  return out;
}

function pct(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`;
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
}

function rows(result: QualityResult): { header: string[]; lines: string[][] } {
  const full = result.settings.find((s) => s.init === null);
  const lengths = result.settings[0]?.recall?.map((r) => r.length) ?? [];
  const header = ['setting', 'KV B/token', 'saved', 'perplexity', 'vs full', ...lengths.map((l) => `recall@${l >= 1024 ? `${l / 1024}k` : l}`), 'FIM EM', 'K err', 'V err'];
  const lines = result.settings.map((s) => [
    s.name,
    s.kvBytesPerToken.toFixed(1),
    `${(s.savings * 100).toFixed(1)}%`,
    s.perplexity < 1e5 ? s.perplexity.toFixed(3) : s.perplexity.toExponential(3),
    full && s !== full ? pct(s.perplexity / full.perplexity - 1) : '',
    ...lengths.map((l) => { const r = s.recall?.find((x) => x.length === l); return r ? `${(r.accuracy * 100).toFixed(0)}% (${r.correct}/${r.total})` : '-'; }),
    s.fim ? `${(s.fim.exactMatch * 100).toFixed(0)}% (${s.fim.correct}/${s.fim.total})` : '-',
    s.ranks ? s.ranks.heldOutErrorK.toFixed(3) : '',
    s.ranks ? s.ranks.heldOutErrorV.toFixed(3) : '',
  ]);
  return { header, lines };
}

export function textTable(result: QualityResult): string {
  const { header, lines } = rows(result);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => `${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}\n`;
  const g = goals(result).map((x) => `goal${result.quick ? ' (quick run, meaningless)' : ''}: ${x.goal}: ${x.met === null ? 'not measured' : x.met ? 'MET' : 'MISSED'} (${x.setting ?? '-'}; ${x.detail})\n`).join('');
  return row(header) + lines.map(row).join('') + g + `total ${result.seconds.toFixed(0)}s on ${result.device}\n`;
}

export function markdownReport(result: QualityResult, jsonPath: string): string {
  const { header, lines } = rows(result);
  const table = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
  const goalLines = goals(result).map((g) => `- ${g.goal}: **${g.met === null ? 'not measured' : g.met ? 'met' : 'missed'}** (${g.setting ?? '-'}; ${g.detail})`).join('\n');
  const fullFim = result.settings.find((s) => s.init === null)?.fim;
  const examples = fullFim ? fullFim.examples.map((e) => `- \`${e.path}\`: expected \`${e.expected}\`, got \`${e.got}\``).join('\n') : '';
  return `# CSKV quality${result.quick ? ' (quick run: random weights, the numbers mean nothing)' : ''}

Generated by \`node out/bench/quality.js\` (bench/quality.ts) on ${result.date.slice(0, 10)}, ${result.device}, in
${(result.seconds / 60).toFixed(1)} minutes. Raw numbers: \`${jsonPath}\`.

- Model: \`${result.model}\` (${result.modelConfig.layers} layers, ${result.modelConfig.kvDim} K/V channels per layer, vocabulary ${result.modelConfig.vocab}).
  A full fp16 cache costs ${result.fp16BytesPerToken} bytes per token.
- Held-out code: \`${result.heldout}\` (packages never trained on). Perplexity over ${result.perplexityTokens} tokens in windows of
  ${String(result.plan.pplContext)} tokens, scored with prefill in chunks and the bi-branch cache active (\`cskv-code perplexity\`).
- Factors: \`cskv-code compress\` on ${String(result.plan.calibTokens)} tokens of training-split code (\`${result.calibration}\`), window
  ${String(result.plan.window)}; one factor file per (initialisation, rotation, density), used at each bit width. "K err"/"V err":
  mean held-out relative reconstruction error of keys/values over layers (at 16 bits).
- KV B/token: compressed-branch bytes per token with the quantiser's scale/zero overhead (what a long context costs
  per token; the full-precision window adds at most ${String(result.plan.window)} tokens per layer). Saved: against fp16.
- Recall: \`const value_<word> = <number>;\` definitions spread through held-out code; the value of one from the first
  half of the context is asked at the end (\`assert.equal(value_<word>, \`), greedy, exact match
  (${String(result.plan.recallQuestions)} questions per length).
- FIM EM: one held-out line cut out and filled back in PSM form, greedy, exact match after trimming.
- Recall and FIM are measured for the full cache and the closed form (FIM without rotation); the SVD/ASVD
  baselines get perplexity and reconstruction error only, unless the run asked for --tasks-for-baselines ("-").

${table}

Goals (issue 4):
${goalLines}
${examples ? `\nFIM answers with the full cache (first few):\n${examples}\n` : ''}`;
}
