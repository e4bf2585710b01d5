// Fill-in-the-middle exact match on held-out code: one whole line (at least 8 non-blank characters) is cut out of
// a held-out file and the model, given the repo header, the file's path and the PSM prompt
// `<|fim_prefix|>before<|fim_suffix|>after<|fim_middle|>`, must write it back (greedy; compared with surrounding
// whitespace trimmed). Cases come from a seed, so every cache setting fills the same holes.
import type { Engine } from '../src/runtime/engine';
import { generate } from '../src/runtime/generate';
import type { ModelTokenizer } from '../src/runtime/tokenizer';
import type { RepoFormat } from '../src/workspace/layout';
import { mulberry32 as seededRandom } from '../src/runtime/random';
import { type CodeRepo, shuffled } from './heldOutCode';

export interface FimCase {
  repo: string;
  path: string;
  prompt: number[];
  middle: string;
}

export interface FimScore {
  correct: number;
  total: number;
  exactMatch: number;
  /** The first few answers, to read. */
  examples: { path: string; expected: string; got: string }[];
}

const FIM_TOKENS = ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>'] as const;

/** null when the tokenizer has no FIM tokens. */
export function buildFimCases(tokenizer: ModelTokenizer, format: RepoFormat, repos: readonly CodeRepo[], count: number, seed: number,
  prefixTokens: number, suffixTokens: number): FimCase[] | null {
  const ids = FIM_TOKENS.map((t) => tokenizer.tokenId(t));
  if (ids.some((id) => id === undefined)) return null;
  const [pre, suf, mid] = ids as number[];
  const random = seededRandom(seed);
  const files = shuffled(repos.flatMap((r) => r.files.filter((f) => f.text.split('\n').length >= 5).map((f) => ({ repo: r.repo, file: f }))), random);
  const cases: FimCase[] = [];
  for (const { repo, file } of files) {
    if (cases.length >= count) break;
    const lines = file.text.split('\n');
    const candidates = lines.map((_, i) => i).filter((i) => lines[i]!.trim().replace(/\s/g, '').length >= 8 && i > 0 && i < lines.length - 1);
    if (candidates.length === 0) continue;
    const at = candidates[Math.floor(random() * candidates.length)]!;
    const before = `${lines.slice(0, at).join('\n')}\n`;
    const after = `\n${lines.slice(at + 1).join('\n')}`;
    const head = tokenizer.encodeParts([...format.header(repo), ...format.fileHeader(file.path)], { addSpecialTokens: true });
    const p = tokenizer.encode(before, { addSpecialTokens: false, literal: true }).slice(-prefixTokens);
    const s = tokenizer.encode(after, { addSpecialTokens: false, literal: true }).slice(0, suffixTokens);
    cases.push({ repo, path: file.path, prompt: [...head, pre, ...p, suf, ...s, mid], middle: lines[at]! });
  }
  return cases;
}

export async function scoreFim(engine: Engine, tokenizer: ModelTokenizer, cases: readonly FimCase[]): Promise<FimScore> {
  const stops = new Set([...tokenizer.eosTokenIds, ...['<|file_sep|>', '<|fim_pad|>', ...FIM_TOKENS].map((t) => tokenizer.tokenId(t)).filter((id): id is number => id !== undefined)]);
  let correct = 0;
  const examples: FimScore['examples'] = [];
  for (const c of cases) {
    await engine.truncate(0);
    const limit = tokenizer.encode(c.middle, { addSpecialTokens: false, literal: true }).length + 8;
    const { text } = await generate(engine, c.prompt, { greedy: true, maxNewTokens: limit, stopTokens: [...stops], tokenizer, stopWhen: (t) => t.includes('\n') });
    const got = text.split('\n')[0]!;
    if (got.trim() === c.middle.trim()) correct++;
    if (examples.length < 5) examples.push({ path: c.path, expected: c.middle.trim(), got: got.trim() });
  }
  return { correct, total: cases.length, exactMatch: cases.length ? correct / cases.length : NaN, examples };
}
