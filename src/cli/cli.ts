// The cskv-code command line. Other tools and checks call it, so its commands, flags and JSON stay stable.
import { compressCommand } from './commands/compress';
import { askCommand } from './commands/ask';
import { generateCommand } from './commands/generate';
import { logitsCommand } from './commands/logits';
import { modelsCommand } from './commands/models';
import { perplexityCommand } from './commands/perplexity';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pullCommand } from './commands/pull';
import { type CommandIO, UsageError, attachNegativeValues } from './commands/shared';
import { DEFAULTS } from '../shared/settings';
import { DEFAULT_PARALLEL_FILES } from '../runtime/download/parallelFiles';
import { RuntimeError } from '../runtime/errors';
import { packageRoot } from '../shared/defaultModel';

const USAGE = `usage:
  cskv-code ask      --workspace DIR --model DIR [--backend B] [--cskv FILE|auto|off] [--window N] [--bits 16|8|4|2] [--weights W]
                     [--budget TOKENS] [--max-new-tokens N] [--no-save] [--verbose] [--json] "question"
  cskv-code generate --model DIR [--backend B] [--cskv FILE|off] [--window N] [--bits 16|8|4|2] [--weights f32|q8|q4|f16] [--chunk N]
                     (--prompt TEXT | --prompt-ids 1,2,3) [--chat] [--max-new-tokens N]
                     [--greedy | --temperature T --top-p P --top-k K --seed S] [--json]
  cskv-code logits   --model DIR [--backend B] [--cskv FILE|off] [--window N] [--bits B] [--weights W] [--chunk N]
                     --prompt-ids 1,2,3 [--last N]
  cskv-code compress --model DIR [--backend B] [--calib PATH]... [--density 0.2] [--bits 16|8|4|2] [--window 32]
                     [--groups G] [--tokens 65536] [--segment 512] [--init closed|svd|asvd]
                     [--rotate none|hadamard|hadamard-values] [--statistics-mb 512] [--weights W] [--chunk N]
                     [--out FILE] [--json]
  cskv-code perplexity --model DIR [--backend B] [--cskv FILE|off] [--window N] [--bits B] [--weights W] [--chunk N] --file TEXT
                     [--context N] [--max-tokens N] [--json]
  cskv-code models   [--dir DIR]... [--budget TOKENS] [--native-library FILE] [--json]
  cskv-code pull     ORG/NAME[:FILE|:QUANT] | URL [--revision REV] [--dir DIR] [--parallel N] [--json]
  cskv-code --version

--model takes a Hugging Face model directory or a GGUF file (FILE.gguf).
--backend auto|cuda|webgpu|onnx (default auto: CUDA, else WebGPU on a hardware GPU, else onnx on the CPU; the
choice and its reason go to stderr).
--cskv defaults to DIR/cskv.safetensors (for FILE.gguf: FILE.cskv.safetensors beside it) when that file exists,
else off.
--weights: how linear layers and the output head are held: f32, q8 (default: blockwise 8-bit) or q4; on the
CUDA backend q8 or q4 (8- or 4-bit blocks on the GPU) or, by default and for f32, bf16.
compress reads the text files under --calib (default: the current directory) and writes that file
unless --out is given. models lists the models found in the Hugging Face hub cache, LM Studio, llama.cpp's
cache, Ollama and the --dir folders, and whether each fits the GPU (the CUDA engine's bf16 weights, else q8 or q4, and a
full-precision KV cache for --budget tokens of workspace, default ${DEFAULTS.contextTokenBudget}) or why no GPU was found.
pull downloads a model from the Hugging Face Hub into its cache (HF_HUB_CACHE, HF_HOME/hub or
~/.cache/huggingface/hub; HF_ENDPOINT and HF_TOKEN are honoured): ORG/NAME fetches a transformers model folder, or
from a GGUF repo its Q4_K_M file; ORG/NAME:Q8_0 the GGUF of that quantisation; ORG/NAME:FILE that file. A URL of a
.gguf file elsewhere goes into --dir (default: llama.cpp's cache). Several files are fetched --parallel at once
(default ${DEFAULT_PARALLEL_FILES}). An interrupted pull resumes where it stopped when run again. It prints the
model's path (for --model); --json prints progress events instead.
`;

export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const [command, ...given] = argv;
  const rest = attachNegativeValues(given);
  const io: CommandIO = { out, err };
  try {
    switch (command) {
      case 'ask':
        return await askCommand(rest, io);
      case 'generate':
        return await generateCommand(rest, io);
      case 'logits':
        return await logitsCommand(rest, io);
      case 'compress':
        return await compressCommand(rest, io);
      case 'perplexity':
        return await perplexityCommand(rest, io);
      case 'models':
        return await modelsCommand(rest, io);
      case 'pull':
        return await pullCommand(rest, io);
      case '--version':
      case '-V':
        out.write(`cskv-code ${version()}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err.write(`cskv-code: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    if (e instanceof RuntimeError) {
      err.write(`cskv-code: ${e.message} [${e.code}]\n`);
      return 1;
    }
    throw e;
  }
}

/** This package's version, from its package.json. */
function version(): string {
  const root = packageRoot();
  if (root === undefined) return 'unknown (no package.json of cskv-code above this file)';
  return (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

// `node dist/cli.js ...` (the extension runs it so, with no bin/ in the .vsix) behaves as `cskv-code ...`.
if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`cskv-code: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
