// Long-range recall over code, LongEval-lines style: definitions `const value_<word> = <number>;` are spread
// evenly through real held-out code, and the model is asked, at the end of the context, for one defined in the
// first half (`assert.equal(value_<word>, ` -> the number, greedy, exact match). Contexts are built once per
// length from a seed, so every cache setting answers the same questions; each context is prefilled once and
// each of its (up to 5) questions is asked after truncating back to it.
import type { Engine } from '../src/runtime/engine';
import { generate } from '../src/runtime/generate';
import type { ModelTokenizer } from '../src/runtime/tokenizer';
import type { RepoFormat } from '../src/workspace/layout';
import { mulberry32 as seededRandom } from '../src/runtime/random';
import { type CodeRepo, shuffled } from './heldOutCode';

const WORDS = ['amber', 'basil', 'cedar', 'delta', 'ember', 'fjord', 'garnet', 'harbor', 'indigo', 'juniper', 'kepler',
  'lagoon', 'meadow', 'nectar', 'onyx', 'pepper', 'quartz', 'raven', 'saffron', 'tundra', 'umber', 'velvet', 'walnut',
  'yarrow', 'zephyr', 'acorn', 'birch', 'cobalt', 'dune', 'falcon', 'glacier', 'hazel', 'iris', 'jasper', 'kiwi',
  'lotus', 'maple', 'nimbus', 'orchid', 'pebble', 'quill', 'reef', 'sierra', 'thistle', 'vertex', 'willow', 'xenon'];
const QUERY_FILE = 'test/registry.test.ts';
const QUERY_ROOM = 24; // tokens kept for the question

export interface RecallQuestion {
  word: string;
  answer: string;
  /** Where the definition sits, as a fraction of the context. */
  depth: number;
}

export interface RecallCase {
  length: number;
  context: number[];
  questions: RecallQuestion[];
}

export interface RecallScore {
  length: number;
  correct: number;
  total: number;
  accuracy: number;
}

/** Code lines of the held-out repositories, in file order (the filler between definitions). */
export function fillerLines(repos: readonly CodeRepo[]): string[] {
  const lines: string[] = [];
  for (const r of repos) for (const f of r.files) for (const l of f.text.split('\n')) if (l.trim() !== '' && l.length < 160 && !l.includes('value_')) lines.push(l);
  return lines;
}

/** Questions asked of one context; more questions per length take more contexts (each from its own place in
 *  the filler), so a score rests on several contexts, not one. */
const QUESTIONS_PER_CONTEXT = 5;

export function buildRecallCases(tokenizer: ModelTokenizer, format: RepoFormat, lines: readonly string[], lengths: readonly number[],
  questionsPerLength: number, seed: number): RecallCase[] {
  const random = seededRandom(seed);
  const cases: RecallCase[] = [];
  for (const length of lengths) {
    for (let asked = 0; asked < questionsPerLength; asked += QUESTIONS_PER_CONTEXT) {
      cases.push(recallCase(tokenizer, format, lines, length, Math.min(QUESTIONS_PER_CONTEXT, questionsPerLength - asked), random));
    }
  }
  return cases;
}

function recallCase(tokenizer: ModelTokenizer, format: RepoFormat, lines: readonly string[], length: number, questions: number, random: () => number): RecallCase {
  const definitions = Math.max(2 * questions + 2, Math.round(length / 200));
  const words = shuffled(WORDS, random);
  const numbered = Array.from({ length: definitions }, (_, i) => ({ word: `${words[i % words.length]}_${i}`, answer: String(10 + Math.floor(random() * 99990)) }));
  const context = tokenizer.encodeParts([...format.header(`recall/${length}`), ...format.fileHeader('src/registry.ts')], { addSpecialTokens: true });
  const budget = length - QUERY_ROOM;
  let line = Math.floor(random() * Math.max(1, lines.length));
  const depths: number[] = [];
  for (let d = 0; d < numbered.length; d++) {
    const until = Math.floor((budget * (d + 0.5)) / numbered.length);
    while (context.length < until && lines.length > 0) {
      context.push(...tokenizer.encode(`${lines[line % lines.length]}\n`, { addSpecialTokens: false, literal: true }));
      line++;
    }
    depths.push(context.length / length);
    context.push(...tokenizer.encode(`const value_${numbered[d]!.word} = ${numbered[d]!.answer};\n`, { addSpecialTokens: false, literal: true }));
  }
  while (context.length < budget && lines.length > 0) {
    context.push(...tokenizer.encode(`${lines[line % lines.length]}\n`, { addSpecialTokens: false, literal: true }));
    line++;
  }
  context.length = Math.min(context.length, budget);
  // Only the first half's definitions are asked: far back, and never cut by the trim above.
  const farBack = numbered.map((n, i) => ({ ...n, depth: depths[i]! })).filter((q) => q.depth < 0.5);
  return { length, context, questions: shuffled(farBack, random).slice(0, questions) };
}

export function questionIds(tokenizer: ModelTokenizer, format: RepoFormat, q: RecallQuestion): number[] {
  return tokenizer.encodeParts([...format.fileHeader(QUERY_FILE), { template: `assert.equal(value_${q.word}, ` }]);
}

export async function scoreRecall(engine: Engine, tokenizer: ModelTokenizer, format: RepoFormat, cases: readonly RecallCase[]): Promise<RecallScore[]> {
  const stops = new Set(tokenizer.eosTokenIds);
  const scores = new Map<number, RecallScore>();
  for (const c of cases) {
    await engine.truncate(0);
    await engine.prefill(c.context, { logits: 0 });
    let correct = 0;
    for (const q of c.questions) {
      await engine.truncate(c.context.length);
      const { text } = await generate(engine, questionIds(tokenizer, format, q), {
        greedy: true, maxNewTokens: q.answer.length + 2, stopTokens: [...stops], tokenizer, stopWhen: (t) => /\D/.test(t.trimStart()),
      });
      if (/^\s*(\d+)/.exec(text)?.[1] === q.answer) correct++;
    }
    const s = scores.get(c.length) ?? { length: c.length, correct: 0, total: 0, accuracy: NaN };
    s.correct += correct;
    s.total += c.questions.length;
    s.accuracy = s.correct / s.total;
    scores.set(c.length, s);
  }
  return [...scores.values()];
}
