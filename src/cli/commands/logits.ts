// cskv-code logits: the logits of the last N positions of one prefill, as JSON (reference checks).
import { parseArgs } from 'node:util';
import { type CommandIO, UsageError, engineFlags, loadEngine, optionalInt, parseIds } from './shared';

/** The flags `cskv-code logits` takes (its usage line in cli.ts names each). */
export const LOGITS_OPTIONS = { ...engineFlags, last: { type: 'string' } } as const;

export async function logitsCommand(argv: string[], { out }: CommandIO): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: LOGITS_OPTIONS });
  if (v['prompt-ids'] === undefined) throw new UsageError('--prompt-ids 1,2,3 is required');
  const ids = parseIds(v['prompt-ids']);
  const last = Math.min(optionalInt(v.last, '--last') ?? 1, ids.length);
  const engine = await loadEngine(v);
  try {
    const flat = await engine.prefill(ids, { logits: last });
    const vocab = engine.info.config.vocabSize;
    const rows = Array.from({ length: last }, (_, i) => Array.from(flat.subarray(i * vocab, (i + 1) * vocab)));
    // What computed them: against a float reference, the default 8-bit weights alone differ by ~1e-2 of the logit scale.
    const { backend, weights } = engine.info;
    out.write(`${JSON.stringify({ backend, weights, logits: rows })}\n`);
    return 0;
  } finally {
    await engine.dispose();
  }
}

