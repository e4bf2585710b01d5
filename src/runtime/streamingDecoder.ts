// Turns generated token ids into text as they arrive, so the user sees output token by token.
// Decoding ids one at a time is wrong: one character can span several tokens (byte-level BPE splits emoji and
// CJK into bytes, SentencePiece falls back to <0xF0>-style byte tokens), and SentencePiece decoders drop the
// space that starts the first token. Decoding everything again per token is right but quadratic.
// The technique used by text-generation-inference: decode a short window of recent ids twice — without and
// with the new ids — and emit the difference. The window starts at the previous emission point, so the
// decoder sees the same context as a full decode and the cost per token stays constant.

import type { DecodeOptions, ModelTokenizer } from './tokenizer';

export interface StreamingDecoderOptions {
  /** Leave special tokens such as <|im_end|> out of the text (default false). */
  skipSpecialTokens?: boolean;
}

/** U+FFFD, what a decoder writes for bytes that do not (yet) form a complete UTF-8 character. */
const REPLACEMENT_CHARACTER = '\uFFFD';

export class StreamingDecoder {
  /** Recent ids; everything before them has been emitted and no longer affects the text. */
  private window: number[] = [];
  /** Ids window[0 .. readOffset) have been emitted; the rest are waiting for their text to complete. */
  private readOffset = 0;
  private readonly decodeOptions: DecodeOptions;

  constructor(
    private readonly tokenizer: Pick<ModelTokenizer, 'decode'>,
    options: StreamingDecoderOptions = {},
  ) {
    this.decodeOptions = { skipSpecialTokens: options.skipSpecialTokens ?? false };
  }

  /**
   * Adds one generated id; returns the text it completes. That is '' while the text so far ends in an
   * incomplete multi-byte character, or while the new ids add no text yet (a SentencePiece "▁" at the start,
   * a skipped special token).
   */
  push(id: number): string {
    this.window.push(id);
    const emitted = this.decode(this.window.slice(0, this.readOffset));
    const current = this.decode(this.window);
    if (current.length <= emitted.length || current.endsWith(REPLACEMENT_CHARACTER)) return '';
    // Keep the ids just emitted as the context for the next decode; drop the older ones.
    this.window = this.window.slice(this.readOffset);
    this.readOffset = this.window.length;
    return current.slice(emitted.length);
  }

  /**
   * Ends the stream: returns the text still held back (an incomplete character decodes to U+FFFD here, as in a
   * full decode) and starts over, so the next push begins a new text.
   */
  flush(): string {
    const emitted = this.decode(this.window.slice(0, this.readOffset));
    const current = this.decode(this.window);
    this.window = [];
    this.readOffset = 0;
    return current.length > emitted.length ? current.slice(emitted.length) : '';
  }

  private decode(ids: number[]): string {
    return ids.length === 0 ? '' : this.tokenizer.decode(ids, this.decodeOptions);
  }
}
