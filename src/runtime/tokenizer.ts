// The model's tokenizer, loaded from a Hugging Face model directory: text ↔ token ids, the special tokens the
// runtime needs (BOS, every id that ends generation), and the model's chat template.
// Tokenization itself is @huggingface/tokenizers (a JS port of HF tokenizers); this class adds the loading,
// validation and the few places where that library differs from the reference implementation.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ChatMessage, ChatTemplate, ChatTemplateSource } from './chatTemplate';
import { ModelFormatError, RuntimeError, UnsupportedError } from './errors';
import { ggufModelConfig } from './model/ggufConfig';
import { GgufFile } from './model/ggufFile';
import { ggufTokenizerParts } from './model/ggufTokenizer';
import { isGgufModel } from './model/modelPath';
import { LinePieces, linePiecesAreExact } from './linePieces';

export type { ChatMessage } from './chatTemplate';

/**
 * What this class uses of @huggingface/tokenizers. The package's own declarations import their siblings without file
 * extensions, which TypeScript's node16 resolution cannot follow inside an ES-module package, so its class would
 * type as `any`; this interface keeps the calls checked (the shapes of its Tokenizer.d.ts, version 0.2).
 */
interface Tokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
}

export interface EncodeOptions {
  /** Add the BOS/EOS tokens the model expects around a sequence (default true). */
  addSpecialTokens?: boolean;
  /**
   * Plain text that must never yield a special id (default false): a source file that happens to contain
   * "<|file_sep|>" must not split the model's view of the repository.
   */
  literal?: boolean;
}

/**
 * A piece of a prompt: `template` is text this project writes (its repo-level headers, FIM markers), where special
 * tokens such as "<|file_sep|>" are meant; `literal` is text from anywhere else (a file's name, a folder's name),
 * which never yields a special id.
 */
export type PromptPart = { readonly template: string } | { readonly literal: string };

/** The text of prompt parts, joined (what a prompt hashes and decodes to). */
export function promptText(parts: readonly PromptPart[]): string {
  return parts.map((p) => ('template' in p ? p.template : p.literal)).join('');
}

export interface DecodeOptions {
  /** Leave out special tokens such as <|im_end|> or </s> (default false, as in transformers). */
  skipSpecialTokens?: boolean;
}

export interface ApplyChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Template-specific switches, e.g. { enable_thinking: false } for Qwen3. */
  variables?: Readonly<Record<string, unknown>>;
}

type JsonObject = Record<string, unknown>;

// Model types the tokenizer library implements for decoder-only LLMs (byte-level BPE, SentencePiece BPE/Unigram).
const SUPPORTED_MODEL_TYPES = ['BPE', 'Unigram'];

/** How encode() corrects what the tokenizer.json post-processor puts around a sequence. */
interface SpecialTokenPolicy {
  prependBos: number | undefined;
  dropLeadingBos: boolean;
  appendEos: number | undefined;
  dropTrailingEos: boolean;
}

export class ModelTokenizer {
  /** Number of ids the tokenizer knows (largest id + 1). The model's embedding may be larger (Qwen pads to 151936). */
  readonly vocabSize: number;
  readonly bosTokenId: number | undefined;
  /** Every id that ends generation: tokenizer_config eos_token ∪ generation_config.json ∪ config.json eos_token_id. */
  readonly eosTokenIds: readonly number[];

  private readonly bosToken: string | undefined;
  private readonly eosToken: string | undefined;
  private readonly specialIds: ReadonlySet<number>;
  private readonly policy: SpecialTokenPolicy;
  /** Matches any added token's text (longest first), for literal encoding. */
  private readonly addedTokens: RegExp | undefined;
  /** Literal text as remembered line pieces, where those give the whole text's ids (linePieces.ts). */
  private readonly linePieces: LinePieces | undefined;

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly chatTemplate: ChatTemplate,
    private readonly templateTokens: Readonly<Record<string, string>>,
    fields: {
      vocabSize: number;
      bosToken: string | undefined;
      bosTokenId: number | undefined;
      eosToken: string | undefined;
      eosTokenIds: number[];
      specialIds: Set<number>;
      policy: SpecialTokenPolicy;
      addedTokens: string[];
      linePiecesAreExact: boolean;
    },
  ) {
    const added = [...fields.addedTokens].filter((t) => t.length > 1).sort((a, b) => b.length - a.length);
    this.addedTokens = added.length ? new RegExp(added.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g') : undefined;
    this.vocabSize = fields.vocabSize;
    this.bosToken = fields.bosToken;
    this.bosTokenId = fields.bosTokenId;
    this.eosToken = fields.eosToken;
    this.eosTokenIds = fields.eosTokenIds;
    this.specialIds = fields.specialIds;
    this.policy = fields.policy;
    this.linePieces = fields.linePiecesAreExact ? new LinePieces((piece) => this.encodeLiteralText(piece)) : undefined;
  }

  /**
   * Loads the tokenizer of the model in `modelDir`: tokenizer.json (required), tokenizer_config.json (special
   * tokens, chat template), and generation_config.json / config.json (extra end-of-generation ids), when present.
   * A GGUF file (a path that is a file) gives the same from its tokenizer metadata (model/ggufTokenizer.ts).
   * With the `model`'s config, a tokenizer with more tokens than the model's embedding is refused.
   */
  static load(modelDir: string, model?: { readonly file: string; readonly vocabSize: number }): ModelTokenizer {
    const tokenizer = ModelTokenizer.loadFiles(modelDir);
    // Ids past the model's embedding would fail at the first prompt that uses them, naming neither file.
    if (model && tokenizer.vocabSize > model.vocabSize) {
      const file = isGgufModel(modelDir) ? modelDir : path.join(modelDir, 'tokenizer.json');
      throw new ModelFormatError(file, `has ${tokenizer.vocabSize} tokens but the model has ${model.vocabSize} (vocab_size in ${model.file}); the tokenizer belongs to another model`);
    }
    return tokenizer;
  }

  private static loadFiles(modelDir: string): ModelTokenizer {
    if (isGgufModel(modelDir)) return ModelTokenizer.loadGguf(modelDir);
    const tokenizerFile = path.join(modelDir, 'tokenizer.json');
    const configFile = path.join(modelDir, 'tokenizer_config.json');
    const tokenizerJson = readJsonObject(tokenizerFile, 'required');
    const config = readJsonObject(configFile, 'optional') ?? {};
    const extraEos: number[] = [];
    for (const file of [path.join(modelDir, 'generation_config.json'), path.join(modelDir, 'config.json')]) {
      extraEos.push(...eosIdsOf(readJsonObject(file, 'optional'), file));
    }
    const chatTemplateSource = findChatTemplate(config, configFile, modelDir);
    return ModelTokenizer.build({ tokenizerJson, tokenizerFile, config, configFile, extraEos, chatTemplateSource });
  }

  private static loadGguf(file: string): ModelTokenizer {
    const gguf = GgufFile.open(file);
    try {
      const { tokenizerJson, tokenizerConfig } = ggufTokenizerParts(gguf);
      const eos = ggufModelConfig(gguf).eosTokenIds;
      const template = tokenizerConfig.chat_template;
      return ModelTokenizer.build({
        tokenizerJson, tokenizerFile: file, config: tokenizerConfig, configFile: file, extraEos: [...eos],
        chatTemplateSource: typeof template === 'string' ? { source: template, file } : undefined,
      });
    } finally {
      gguf.close();
    }
  }

  private static build(parts: {
    tokenizerJson: JsonObject; tokenizerFile: string; config: JsonObject; configFile: string; extraEos: number[];
    chatTemplateSource: { source: ChatTemplateSource; file: string } | undefined;
  }): ModelTokenizer {
    const { tokenizerJson, tokenizerFile, config, configFile, chatTemplateSource } = parts;
    const libraryInput = validateTokenizerJson(tokenizerJson, tokenizerFile);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new HfTokenizer(libraryInput, config) as Tokenizer;
    } catch (err) {
      throw new UnsupportedError(tokenizerFile, `the tokenizer cannot be built from this file: ${messageOf(err)}`);
    }

    const idOfConfigToken = (field: string): { token: string | undefined; id: number | undefined } => {
      const token = tokenContent(config[field], configFile, field);
      if (token === undefined) return { token, id: undefined };
      const id = tokenizer.token_to_id(token);
      if (id === undefined) {
        throw new ModelFormatError(configFile, `${field} "${token}" is not in the vocabulary of ${tokenizerFile}`);
      }
      return { token, id };
    };
    const bos = idOfConfigToken('bos_token');
    const eos = idOfConfigToken('eos_token');

    const eosTokenIds: number[] = eos.id === undefined ? [] : [eos.id];
    for (const id of parts.extraEos) {
      if (!eosTokenIds.includes(id)) eosTokenIds.push(id);
    }

    const chatTemplate = ChatTemplate.compile(chatTemplateSource?.source, chatTemplateSource?.file ?? configFile);

    return new ModelTokenizer(tokenizer, chatTemplate, templateTokensOf(config, configFile), {
      vocabSize: vocabSizeOf(libraryInput),
      bosToken: bos.token,
      bosTokenId: bos.id,
      eosToken: eos.token,
      eosTokenIds,
      specialIds: specialIdsOf(libraryInput, config, tokenizer, configFile),
      addedTokens: (libraryInput.added_tokens as Array<{ content: string }>).map((t) => t.content),
      linePiecesAreExact: linePiecesAreExact(libraryInput),
      policy: specialTokenPolicy(tokenizer, config, bos.id, eos.id, chatTemplateSource?.source),
    });
  }

  /** Token ids of `text`. Special tokens written in the text (e.g. "<|im_start|>") become their single ids. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const ids = options.literal ? this.encodeLiteral(text) : this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    return addSpecialTokens ? this.decorate(ids) : ids;
  }

  /**
   * Token ids of a prompt made of parts: special tokens only where a `template` part writes them. With
   * addSpecialTokens (default false here) the BOS/EOS the model expects go around the whole.
   */
  encodeParts(parts: readonly PromptPart[], options: { addSpecialTokens?: boolean } = {}): number[] {
    const ids: number[] = [];
    for (const part of parts) {
      const piece = 'template' in part ? this.tokenizer.encode(part.template, { add_special_tokens: false }).ids : this.encodeLiteral(part.literal);
      for (const id of piece) ids.push(id);
    }
    return options.addSpecialTokens ? this.decorate(ids) : ids;
  }

  /** Adds or drops BOS/EOS as the model expects (specialTokenPolicy). */
  private decorate(ids: number[]): number[] {
    const { prependBos, dropLeadingBos, appendEos, dropTrailingEos } = this.policy;
    if (prependBos !== undefined) ids.unshift(prependBos);
    if (dropLeadingBos) ids.shift();
    if (appendEos !== undefined) ids.push(appendEos);
    if (dropTrailingEos) ids.pop();
    return ids;
  }

  /**
   * Added-token strings in `text` are split after their first character, so they encode as ordinary text. A file typed
   * in is encoded again at every keystroke: as remembered line pieces, only its changed lines are tokenised.
   */
  private encodeLiteral(text: string): number[] {
    return this.linePieces ? this.linePieces.encode(text) : this.encodeLiteralText(text);
  }

  private encodeLiteralText(text: string): number[] {
    if (!this.addedTokens) return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    const mark = markNotIn(text);
    return this.encodeBetweenBreaks(this.breakAddedTokens(text, mark), mark);
  }

  /**
   * Encodes `text` piece by piece between `mark`s (special-token text in a piece is parsed). A SentencePiece
   * tokenizer starts each piece with a word-start "▁", as it does after every added token, so there the text of a
   * broken token decodes with a space in it ("< /s>"): the price of never reading it as the control token.
   */
  private encodeBetweenBreaks(text: string, mark: string): number[] {
    // Appended one by one: spreading a whole file's ids into push() overflows the stack past ~100k tokens.
    const ids: number[] = [];
    for (const piece of text.split(mark)) {
      if (piece === '') continue;
      for (const id of this.tokenizer.encode(piece, { add_special_tokens: false }).ids) ids.push(id);
    }
    return ids;
  }

  /**
   * Text of `ids`. Ids the vocabulary lacks (padding rows of a larger embedding) decode to nothing, as in
   * HF tokenizers. Spaces are never "cleaned up" ("a , b" stays "a , b"), whatever tokenizer_config says:
   * that legacy cleanup corrupts code and breaks decode(encode(x)) === x.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecialTokens ?? false;
    const kept: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0) {
        throw new RuntimeError('BAD_ARGUMENT', `decode: token id ${id} is not a non-negative integer`);
      }
      if (skipSpecial && this.specialIds.has(id)) continue;
      if (this.tokenizer.id_to_token(id) === undefined) continue;
      kept.push(id);
    }
    // The library rejects an empty list rather than returning ''.
    if (kept.length === 0) return '';
    // Special tokens are filtered above, with the same set isSpecial() reports.
    return this.tokenizer.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** Id of a token given by its vocabulary string, e.g. '<|fim_prefix|>' or '▁Hello'; undefined when absent. */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** Whether `id` is a special token (control tokens such as <|im_end|>, </s>); what skipSpecialTokens drops. */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Whether the model ships its own chat template (otherwise the documented fallback format is used). */
  get hasChatTemplate(): boolean {
    return !this.chatTemplate.isFallback;
  }

  /**
   * The prompt text for `messages` in the model's chat format. It already contains every special token the
   * model expects (templates write BOS themselves), so encode it with addSpecialTokens: false — or use encodeChat.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions = {}): string {
    return this.chatTemplate.render(messages, {
      addGenerationPrompt: options.addGenerationPrompt ?? false,
      bosToken: this.bosToken ?? '',
      eosToken: this.eosToken ?? '',
      specialTokens: this.templateTokens,
      variables: options.variables ?? {},
    });
  }

  /**
   * Token ids of the chat prompt, without a second BOS in front of the one the template wrote. Only the template's
   * own text yields special ids: special-token text inside a message (a question, a file name in the system prompt,
   * an earlier answer) is encoded as the plain text it is.
   */
  encodeChat(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions = {}): number[] {
    if (!this.addedTokens) return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
    // Each added-token string in a message gets a break after its first character, a character no message
    // contains; the rendered prompt is encoded piece by piece between breaks, so no such string stays whole.
    // (Templates may trim or split a message, so its text cannot be located in the output; a break survives that.)
    const mark = markNotIn(messages.map((m) => m.content).join(''));
    const broken = messages.map((m) => ({ ...m, content: this.breakAddedTokens(m.content, mark) }));
    return this.encodeBetweenBreaks(this.applyChatTemplate(broken, options), mark);
  }

  /**
   * `text` with `mark` after the first character of every added-token match, overlapping ones included, so no
   * piece between marks holds an added token's text. `mark` must not occur in `text` (markNotIn).
   */
  private breakAddedTokens(text: string, mark: string): string {
    const pattern = this.addedTokens!;
    let out = '';
    let last = 0;
    for (let from = 0; ; ) {
      pattern.lastIndex = from;
      const match = pattern.exec(text);
      if (!match) break;
      out += text.slice(last, match.index + 1) + mark;
      last = match.index + 1;
      from = match.index + 1;
    }
    pattern.lastIndex = 0;
    return out + text.slice(last);
  }
}

/** Text of `file`, or undefined when it does not exist. */
function readOptionalText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelFormatError(file, `cannot be read: ${messageOf(err)}`);
  }
}

/** Reads and parses a JSON object file; `optional` files that do not exist give undefined. */
function readJsonObject(file: string, presence: 'required'): JsonObject;
function readJsonObject(file: string, presence: 'optional'): JsonObject | undefined;
function readJsonObject(file: string, presence: 'required' | 'optional'): JsonObject | undefined {
  const text = readOptionalText(file);
  if (text === undefined) {
    if (presence === 'optional') return undefined;
    throw new ModelFormatError(file, 'file not found (the model directory must contain the Hugging Face tokenizer.json)');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(file, `invalid JSON: ${messageOf(err)}${lineAndColumn(text, messageOf(err))}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelFormatError(file, 'must contain a JSON object');
  }
  return value as JsonObject;
}

/** " (line L, column C)" for JSON.parse messages that give a character position; '' otherwise. */
function lineAndColumn(text: string, parseMessage: string): string {
  const match = /at position (\d+)/.exec(parseMessage);
  if (!match) return parseMessage.includes('end of JSON') ? ' (the file is truncated)' : '';
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return ` (line ${line}, column ${column})`;
}

/**
 * Checks the parts of tokenizer.json this runtime relies on, and fills in the optional sections the library
 * insists on finding as keys (real files write them as null, hand-made ones often omit them).
 */
function validateTokenizerJson(json: JsonObject, file: string): JsonObject {
  const model = json.model as JsonObject | undefined;
  if (typeof model !== 'object' || model === null) {
    throw new ModelFormatError(file, 'has no "model" section');
  }
  if (typeof model.type !== 'string' || !SUPPORTED_MODEL_TYPES.includes(model.type)) {
    throw new UnsupportedError(
      file,
      `tokenizer model type ${JSON.stringify(model.type)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
    );
  }
  if (typeof model.vocab !== 'object' || model.vocab === null) {
    throw new ModelFormatError(file, 'model.vocab is missing');
  }
  if (json.decoder === undefined || json.decoder === null) {
    // Without a decoder the library joins tokens with spaces, which is wrong for every LLM tokenizer.
    throw new UnsupportedError(file, 'has no "decoder" section, so ids cannot be turned back into text');
  }
  const addedTokens = json.added_tokens ?? [];
  if (!Array.isArray(addedTokens) || addedTokens.some((t) => typeof t?.id !== 'number' || typeof t?.content !== 'string')) {
    throw new ModelFormatError(file, 'added_tokens must be a list of {id, content, ...} objects');
  }
  return { normalizer: null, pre_tokenizer: null, post_processor: null, ...json, added_tokens: addedTokens };
}

function vocabSizeOf(tokenizerJson: JsonObject): number {
  const model = tokenizerJson.model as { vocab: Record<string, number> | Array<[string, number]> };
  // Unigram vocab is a list indexed by id; BPE vocab maps token → id.
  let largest = -1;
  if (Array.isArray(model.vocab)) largest = model.vocab.length - 1;
  else for (const id of Object.values(model.vocab)) largest = Math.max(largest, id);
  for (const added of tokenizerJson.added_tokens as Array<{ id: number }>) largest = Math.max(largest, added.id);
  return largest + 1;
}

/** A special token in tokenizer_config.json is a string, an AddedToken object {content, ...}, or null. */
function tokenContent(value: unknown, file: string, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as JsonObject).content === 'string') {
    return (value as JsonObject).content as string;
  }
  throw new ModelFormatError(file, `${field} must be a string or an object with a "content" string`);
}

/** eos_token_id of a generation_config.json / config.json: a number or a list of numbers. */
function eosIdsOf(json: JsonObject | undefined, file: string): number[] {
  const value = json?.eos_token_id;
  if (value === undefined || value === null) return [];
  const ids = Array.isArray(value) ? value : [value];
  if (!ids.every((id) => Number.isInteger(id) && id >= 0)) {
    throw new ModelFormatError(file, `eos_token_id must be a token id or a list of token ids, got ${JSON.stringify(value)}`);
  }
  return ids as number[];
}

/** Special = added tokens marked special, plus additional_special_tokens (the same set the library skips). */
function specialIdsOf(tokenizerJson: JsonObject, config: JsonObject, tokenizer: Tokenizer, configFile: string): Set<number> {
  const ids = new Set<number>();
  for (const added of tokenizerJson.added_tokens as Array<{ id: number; special?: boolean }>) {
    if (added.special) ids.add(added.id);
  }
  const additional = config.additional_special_tokens;
  if (Array.isArray(additional)) {
    additional.forEach((entry, index) => {
      const id = tokenizer.token_to_id(tokenContent(entry, configFile, `additional_special_tokens[${index}]`) ?? '');
      if (id !== undefined) ids.add(id);
    });
  }
  return ids;
}

/** The other special tokens templates may refer to by name (unk_token, pad_token, ...). */
function templateTokensOf(config: JsonObject, configFile: string): Record<string, string> {
  const tokens: Record<string, string> = {};
  for (const field of ['unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    const token = tokenContent(config[field], configFile, field);
    if (token !== undefined) tokens[field] = token;
  }
  return tokens;
}

/**
 * The chat template: tokenizer_config.json "chat_template", else the standalone chat_template.jinja or
 * chat_template.json that newer transformers versions save next to it.
 */
function findChatTemplate(
  config: JsonObject,
  configFile: string,
  modelDir: string,
): { source: ChatTemplateSource; file: string } | undefined {
  if (config.chat_template !== undefined && config.chat_template !== null) {
    return { source: config.chat_template as ChatTemplateSource, file: configFile };
  }
  const jinjaFile = path.join(modelDir, 'chat_template.jinja');
  const jinja = readOptionalText(jinjaFile);
  if (jinja !== undefined) return { source: jinja, file: jinjaFile };
  const jsonFile = path.join(modelDir, 'chat_template.json');
  const json = readJsonObject(jsonFile, 'optional');
  if (json?.chat_template !== undefined) return { source: json.chat_template as ChatTemplateSource, file: jsonFile };
  return undefined;
}

/**
 * Decides BOS/EOS for encode(addSpecialTokens: true). An explicit add_bos_token / add_eos_token in
 * tokenizer_config.json wins (transformers rewrites the post-processor to match it); otherwise the
 * tokenizer.json post-processor decides. One exception, for Llama 3: its tokenizer.json was first published
 * with a post-processor that adds no BOS (Meta later added a TemplateProcessing step), although the model
 * always sees <|begin_of_text|> first. So when the config is silent, the post-processor adds nothing, and the
 * model's own chat template writes bos_token, the model is taken to expect BOS and it is added.
 */
function specialTokenPolicy(
  tokenizer: Tokenizer,
  config: JsonObject,
  bosTokenId: number | undefined,
  eosTokenId: number | undefined,
  chatTemplate: ChatTemplateSource | undefined,
): SpecialTokenPolicy {
  // What the post-processor puts around a sequence: encode a probe with and without special tokens.
  const plain = tokenizer.encode('a', { add_special_tokens: false }).ids;
  const decorated = tokenizer.encode('a', { add_special_tokens: true }).ids;
  let start = 0;
  while (start + plain.length <= decorated.length && !plain.every((id, i) => decorated[start + i] === id)) start++;
  const found = start + plain.length <= decorated.length;
  const prefix = found ? decorated.slice(0, start) : [];
  const suffix = found ? decorated.slice(start + plain.length) : [];

  const postProcessorAddsBos = bosTokenId !== undefined && prefix[0] === bosTokenId;
  const postProcessorAddsEos = eosTokenId !== undefined && suffix[suffix.length - 1] === eosTokenId;
  const templateWritesBos = JSON.stringify(chatTemplate ?? '').includes('bos_token');
  const addBos =
    typeof config.add_bos_token === 'boolean'
      ? config.add_bos_token
      : postProcessorAddsBos || (prefix.length === 0 && templateWritesBos);
  const addEos = typeof config.add_eos_token === 'boolean' ? config.add_eos_token : postProcessorAddsEos;
  return {
    prependBos: addBos && !postProcessorAddsBos ? bosTokenId : undefined,
    dropLeadingBos: !addBos && postProcessorAddsBos,
    appendEos: addEos && !postProcessorAddsEos ? eosTokenId : undefined,
    dropTrailingEos: !addEos && postProcessorAddsEos,
  };
}

/** A private-use character that does not occur in `text`, to mark breaks in it. */
function markNotIn(text: string): string {
  for (let code = 0xe000; code <= 0xf8ff; code++) {
    const mark = String.fromCharCode(code);
    if (!text.includes(mark)) return mark;
  }
  throw new RuntimeError('BAD_ARGUMENT', 'the text uses every private-use character, so it cannot be encoded as literal text');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
