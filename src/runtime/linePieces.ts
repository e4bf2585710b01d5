// Tokenising a file again after a keystroke without tokenising all of it: the text is cut into pieces at line starts
// that the byte-level BPE pre-tokenizer never merges across, each piece's ids are remembered by its text, and an edit
// tokenises only the pieces it changed (a 25 KB file: the whole text took ~290 ms a keystroke on a loaded 2-core machine).
//
// Why a cut is exact. The Qwen2 and Llama 3 split regexes (model/ggufTokenizer.ts) are tried left to right, with no
// lookbehind; BPE merges stay inside one regex match. A cut at b, where text[b-1] is "\n" and the whitespace from b on
// reaches a non-space character before any "\r" or "\n", is the end of a match in the whole text: the only
// alternatives that can hold a newline are ` ?[^\s\p{L}\p{N}]+[\r\n]*` and `\s*[\r\n]+`, which end at the last
// newline of their run (b-1 here), and the whitespace-only `\s+(?!\S)` and `\s+`, which come after `\s*[\r\n]+` and so
// never start a run holding a newline. Matching the text before b alone ends in the same match (its last alternative
// looks at nothing past the newline), and matching from b on is what the whole text does after that match. A cut
// before a blank line is not exact ("}\n" + "\n" is one token "\n\n" in the whole), nor one before a line of spaces, nor
// any under GPT-2's regex (no `\s*[\r\n]+`: "x  \n" + "y" splits as "  " + "\n" in the whole but not alone). NFC
// composes nothing with a newline. linePiecesAreExact says where all this holds.
import { LLAMA3_REGEX, QWEN2_REGEX } from './model/ggufTokenizer';

type JsonObject = Record<string, unknown>;

/** The split regexes the argument above holds for. */
const LINE_EXACT_SPLITS: readonly string[] = [QWEN2_REGEX, LLAMA3_REGEX];

/** Line starts a piece may begin at: after a newline, where the line holds a non-space character. */
const PIECE_START = /\n(?=[^\S\r\n]*\S)/g;

/**
 * Pieces remembered (least recently used first out): a typed file's lines stay, as do the files laid out with it; a
 * piece is one line with the blank lines after it, ~250 bytes with its ids.
 */
const REMEMBERED_PIECES = 1 << 15;

/**
 * Whether tokenising a text as its pieces gives the ids of the whole text for this tokenizer.json: a Split by one of
 * LINE_EXACT_SPLITS then ByteLevel without its own regex, no normalizer or NFC, and no added token that holds a newline
 * or eats the whitespace beside it (the library finds added tokens before the split).
 */
export function linePiecesAreExact(tokenizerJson: JsonObject): boolean {
  const normalizer = tokenizerJson.normalizer as JsonObject | null;
  if (normalizer !== null && normalizer?.type !== 'NFC') return false;
  const pre = tokenizerJson.pre_tokenizer as { type?: string; pretokenizers?: JsonObject[] } | null;
  const [split, byteLevel, ...rest] = pre?.type === 'Sequence' ? pre.pretokenizers ?? [] : [];
  const regex = (split?.pattern as { Regex?: string } | undefined)?.Regex;
  if (rest.length > 0 || split?.type !== 'Split' || split.behavior !== 'Isolated' || split.invert !== false || regex === undefined || !LINE_EXACT_SPLITS.includes(regex)) return false;
  if (byteLevel?.type !== 'ByteLevel' || byteLevel.use_regex !== false) return false;
  const added = tokenizerJson.added_tokens as Array<{ content: string; lstrip?: boolean; rstrip?: boolean }>;
  return added.every((t) => !/[\r\n]/.test(t.content) && !t.lstrip && !t.rstrip);
}

/** Encodes texts piece by piece with `encodePiece`, remembering each piece's ids by its text. */
export class LinePieces {
  private readonly remembered = new Map<string, readonly number[]>();

  constructor(private readonly encodePiece: (piece: string) => number[]) {}

  encode(text: string): number[] {
    const ids: number[] = [];
    let start = 0;
    const take = (end: number): void => {
      const piece = text.slice(start, end);
      start = end;
      let pieceIds = this.remembered.get(piece);
      // Deleted and set again: the Map's order is then the order of last use.
      if (pieceIds) this.remembered.delete(piece);
      else pieceIds = this.encodePiece(piece);
      this.remembered.set(piece, pieceIds);
      // One by one: spreading a whole file's ids into push() overflows the stack past ~100k tokens.
      for (const id of pieceIds) ids.push(id);
    };
    PIECE_START.lastIndex = 0;
    for (let m = PIECE_START.exec(text); m; m = PIECE_START.exec(text)) take(m.index + 1);
    if (start < text.length) take(text.length);
    for (const piece of this.remembered.keys()) {
      if (this.remembered.size <= REMEMBERED_PIECES) break;
      this.remembered.delete(piece);
    }
    return ids;
  }
}
