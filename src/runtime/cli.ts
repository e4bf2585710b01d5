// The cskv-code command line. Other tools and checks call it, so its commands, flags and JSON stay stable.
import { generateCommand } from './commands/generate';
import { logitsCommand } from './commands/logits';
import { type CommandIO, UsageError } from './commands/shared';
import { RuntimeError } from './errors';

const USAGE = `usage:
  cskv-code generate --model DIR [--cskv FILE|off] [--window N] [--bits 16|8|4|2]
                     (--prompt TEXT | --prompt-ids 1,2,3) [--chat] [--max-new-tokens N]
                     [--greedy | --temperature T --top-p P --top-k K --seed S] [--json]
  cskv-code logits   --model DIR [--cskv FILE|off] [--window N] [--bits B] --prompt-ids 1,2,3 [--last N]

--cskv defaults to DIR/cskv.safetensors when that file exists, else off.
`;

export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const [command, ...rest] = argv;
  const io: CommandIO = { out, err };
  try {
    switch (command) {
      case 'generate':
        return await generateCommand(rest, io);
      case 'logits':
        return await logitsCommand(rest, io);
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

