// Greedy decoding for the quality benchmark's tasks: prefill a prompt on top of what the engine holds, then take
// the argmax token by token until a stop token, a stop condition on the text, or the token limit.
import type { Engine } from '../src/runtime/engine';
import { argmax } from '../src/runtime/sampler';
import type { ModelTokenizer } from '../src/runtime/tokenizer';

export async function greedyDecode(engine: Engine, tokenizer: ModelTokenizer, prompt: readonly number[], maxNewTokens: number,
  stopIds: ReadonlySet<number>, stopWhen: (text: string) => boolean): Promise<string> {
  let logits = await engine.prefill(prompt, { logits: 1 });
  const ids: number[] = [];
  for (let i = 0; i < maxNewTokens; i++) {
    const next = argmax(logits);
    if (stopIds.has(next)) break;
    ids.push(next);
    if (stopWhen(tokenizer.decode(ids))) break;
    if (i + 1 < maxNewTokens) logits = await engine.prefill([next], { logits: 1 });
  }
  return tokenizer.decode(ids);
}
