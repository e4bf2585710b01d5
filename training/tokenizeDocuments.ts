// Documents (training/build_documents.py) -> token streams for training, encoded by the runtime's own tokenizer.
//
//     node out/training/tokenizeDocuments.js --data training/data [--vocab 16384] [--context 32768]
//
// Writes DATA/tokenizer/ (the house tokenizer: tokenizer.json, tokenizer_config.json with the chat template),
// DATA/train.tokens and DATA/heldout.tokens (little-endian uint16 ids, documents back to back) and DATA/tokens.json
// (counts, vocabulary size, special ids), and DATA/tokenizer_check.json: sample texts with their ids, which the
// GPU machine (no Node there; training/tokenize_documents.py with the `tokenizers` library) must reproduce
// exactly before it trains. Text pieces are encoded as literal text (a file that contains "<|file_sep|>" never
// yields the control id); special pieces become their ids.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as zlib from 'node:zlib';
import { ModelTokenizer } from '../src/runtime/tokenizer';
import { houseChatTemplate, qwenTokenizerDir, writeTruncatedTokenizer } from './houseTokenizer';

type Piece = ['special' | 'text', string];

const ROOT = path.resolve(__dirname, '..', '..');

/** Encodes every document of a .jsonl.gz file into `outFile`; returns [documents, tokens]. */
async function tokenizeFile(tok: ModelTokenizer, inFile: string, outFile: string, sample?: (text: string, ids: number[]) => void): Promise<[number, number]> {
  const lines = readline.createInterface({ input: fs.createReadStream(inFile).pipe(zlib.createGunzip()), crlfDelay: Infinity });
  const out = fs.openSync(outFile, 'w');
  let docs = 0;
  let tokens = 0;
  const started = Date.now();
  try {
    for await (const line of lines) {
      if (!line.trim()) continue;
      const ids: number[] = [];
      for (const [kind, text] of JSON.parse(line) as Piece[]) {
        if (kind === 'special') {
          const id = tok.tokenId(text);
          if (id === undefined) throw new Error(`${inFile}: document ${docs + 1}: special token ${text} is not in the house tokenizer`);
          ids.push(id);
        } else {
          const encoded = tok.encode(text, { addSpecialTokens: false, literal: true });
          sample?.(text, encoded);
          for (const id of encoded) ids.push(id);
        }
      }
      if (ids.some((id) => id > 0xffff)) throw new Error(`${inFile}: document ${docs + 1}: an id above 65535 does not fit the uint16 stream`);
      const buf = Buffer.from(new Uint16Array(ids).buffer);
      fs.writeSync(out, buf);
      docs += 1;
      tokens += ids.length;
      if (docs % 2000 === 0) process.stderr.write(`${path.basename(inFile)}: ${docs} documents, ${(tokens / 1e6).toFixed(1)}M tokens, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    }
  } finally {
    fs.closeSync(out);
  }
  return [docs, tokens];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string, fallback: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
  };
  const data = path.resolve(option('--data', path.join(ROOT, 'training', 'data')));
  const vocab = Number(option('--vocab', '16384'));
  const context = Number(option('--context', '32768'));
  const tokenizerDir = path.join(data, 'tokenizer');
  const vocabSize = writeTruncatedTokenizer(qwenTokenizerDir(ROOT), tokenizerDir, vocab, { chatTemplate: houseChatTemplate(ROOT), modelMaxLength: context });
  const tok = ModelTokenizer.load(tokenizerDir);
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|repo_name|>', '<|file_sep|>', '<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>', '<|fim_pad|>'];
  const specialIds = Object.fromEntries(specials.map((s) => [s, tok.tokenId(s)]));
  const summary: Record<string, unknown> = { vocab_size: vocabSize, special_ids: specialIds };
  // Every 97th held-out text piece (up to 100, short ones) and a text that spells special tokens literally.
  const literal = 'x = "<|file_sep|>" + "<|im_end|>"  # ünïcode ✓ 1234\n';
  const check: { text: string; ids: number[] }[] = [{ text: literal, ids: tok.encode(literal, { addSpecialTokens: false, literal: true }) }];
  let seen = 0;
  const sample = (text: string, ids: number[]): void => {
    seen += 1;
    if (seen % 97 === 0 && check.length < 100 && text.length < 20000) check.push({ text, ids });
  };
  for (const split of ['train', 'heldout']) {
    const inFile = path.join(data, `${split}_documents.jsonl.gz`);
    if (!fs.existsSync(inFile)) throw new Error(`${inFile}: missing; run training/build_documents.py first`);
    const [docs, tokens] = await tokenizeFile(tok, inFile, path.join(data, `${split}.tokens`), split === 'heldout' ? sample : undefined);
    summary[split] = { documents: docs, tokens };
    process.stderr.write(`${split}: ${docs} documents, ${tokens} tokens\n`);
  }
  fs.writeFileSync(path.join(data, 'tokenizer_check.json'), JSON.stringify(check));
  fs.writeFileSync(path.join(data, 'tokens.json'), JSON.stringify(summary, null, 1) + '\n');
  process.stdout.write(JSON.stringify(summary) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`tokenizeDocuments: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
