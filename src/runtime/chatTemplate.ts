// Turns a conversation into the prompt text a model was fine-tuned on, by running the model's own Jinja
// chat template (tokenizer_config.json "chat_template") with the variables Hugging Face transformers supplies.

import { Template } from '@huggingface/jinja';
import { ModelFormatError, RuntimeError } from './errors';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** One entry of the list form of chat_template, e.g. { name: 'default', template: '...' }, { name: 'tool_use', ... }. */
export interface NamedChatTemplate {
  name: string;
  template: string;
}

/** chat_template as tokenizer_config.json stores it: a single template, or a list of named ones. */
export type ChatTemplateSource = string | readonly NamedChatTemplate[];

export interface ChatTemplateOptions {
  /** End the prompt with the header that opens the assistant's turn (default false, as in transformers). */
  addGenerationPrompt?: boolean;
  /** Text of the BOS token; templates that write {{ bos_token }} need it (empty when the model has none). */
  bosToken?: string;
  eosToken?: string;
  /** Further special tokens under their tokenizer_config names, e.g. { unk_token: '<unk>', pad_token: '<pad>' }. */
  specialTokens?: Readonly<Record<string, string>>;
  /** Template-specific switches, e.g. { enable_thinking: false } for Qwen3. They cannot replace the variables above. */
  variables?: Readonly<Record<string, unknown>>;
}

/**
 * Used when a model ships no chat template (base models such as Mistral-7B-v0.1): the model's BOS followed by
 * ChatML turns, `<|im_start|>{role}\n{content}<|im_end|>\n`, and `<|im_start|>assistant\n` as the generation
 * prompt. ChatML is what transformers used as its default template until v4.43, so it is the format such models
 * were most often prompted with; the BOS is included so that, as with real templates, the rendered text carries
 * every special token and is encoded with addSpecialTokens: false.
 */
export const FALLBACK_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * Most numbers range() may produce in one render, over all its calls. A chat template loops over the messages;
 * range() is its only way to loop longer, so a template that asks for more (range(10**9), nested ranges) is broken
 * and would otherwise hang the renderer, which cannot be interrupted.
 */
export const TEMPLATE_RANGE_LIMIT = 100_000;

class TemplateLoopLimit extends Error {}

/**
 * The library declares its own range() before the caller's variables and refuses to declare it again, so every
 * template starts by assigning the bounded one over it (an assignment prints nothing).
 */
const BOUNDED_RANGE = 'cskv_bounded_range';
const RANGE_PRELUDE = `{% set range = ${BOUNDED_RANGE} %}`;

/** Jinja's range() with a budget shared by every call in one render. */
function boundedRange(): (start: number, stop?: number, step?: number) => number[] {
  let left = TEMPLATE_RANGE_LIMIT;
  return (start, stop, step = 1) => {
    const [from, to] = stop === undefined ? [0, start] : [start, stop];
    if (step === 0) throw new Error('range() step must not be zero');
    const count = Math.max(0, Math.ceil((to - from) / step));
    if (!Number.isFinite(count) || count > left) throw new TemplateLoopLimit();
    left -= count;
    return Array.from({ length: count }, (_, i) => from + i * step);
  };
}

// Variables the renderer itself owns; callers' `variables` may not shadow them.
const RESERVED_VARIABLES = new Set(['messages', 'add_generation_prompt', 'bos_token', 'eos_token', 'tools', 'documents', 'range', BOUNDED_RANGE]);

/** A parsed chat template, ready to render any number of conversations. */
export class ChatTemplate {
  private constructor(
    private readonly template: Template,
    /** Where the template came from, used in error messages (e.g. "/models/x/tokenizer_config.json"). */
    readonly origin: string,
    /** True when the model had no template and FALLBACK_CHAT_TEMPLATE is used. */
    readonly isFallback: boolean,
  ) {}

  /**
   * Parses `source` (undefined → the fallback format). `origin` names the file the template came from; it
   * prefixes every error, because a broken template is a defect of that file.
   */
  static compile(source: ChatTemplateSource | undefined, origin: string): ChatTemplate {
    const text = selectDefaultTemplate(source, origin);
    const isFallback = text === undefined;
    try {
      return new ChatTemplate(new Template(RANGE_PRELUDE + (text ?? FALLBACK_CHAT_TEMPLATE)), origin, isFallback);
    } catch (err) {
      throw new ModelFormatError(origin, `chat_template is not a Jinja template @huggingface/jinja can parse: ${messageOf(err)}`);
    }
  }

  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    for (const name of Object.keys(options.variables ?? {})) {
      if (RESERVED_VARIABLES.has(name)) {
        throw new RuntimeError('BAD_ARGUMENT', `chat template variable "${name}" is set by the renderer and cannot be overridden`);
      }
    }
    const context: Record<string, unknown> = {
      ...options.specialTokens,
      ...options.variables,
      // Plain copies: templates may read fields the caller never set (e.g. message.tool_calls), never write them back.
      messages: messages.map((message) => ({ role: message.role, content: message.content })),
      add_generation_prompt: options.addGenerationPrompt ?? false,
      // '' rather than undefined: templates concatenate these, and the engine refuses `undefined + string`.
      bos_token: options.bosToken ?? '',
      eos_token: options.eosToken ?? '',
      [BOUNDED_RANGE]: boundedRange(),
      // tools and documents stay undefined so templates take their plain-chat branch. raise_exception and
      // strftime_now are engine globals that cannot be replaced; errors they raise are wrapped below.
    };
    try {
      return this.template.render(context);
    } catch (err) {
      if (err instanceof TemplateLoopLimit) {
        throw new ModelFormatError(this.origin, `chat_template loops more than ${TEMPLATE_RANGE_LIMIT} times through range(), so it cannot be a chat format; it was stopped`);
      }
      // Almost always the template's own raise_exception(...) rejecting the conversation (roles not
      // alternating, a role it does not know), so this is reported as a problem with the caller's messages.
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `${this.origin}: the chat template rejected the conversation: ${messageOf(err)}`,
      );
    }
  }
}

/** Renders `messages` with a template given as tokenizer_config.json stores it; undefined → fallback format. */
export function renderChatTemplate(
  template: ChatTemplateSource | undefined,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions = {},
): string {
  return ChatTemplate.compile(template, 'chat_template').render(messages, options);
}

/**
 * Picks the template used for plain chat. The list form holds several named templates ("default", "tool_use",
 * "rag"); like transformers, plain chat uses the one named "default", or the only one when there is just one.
 */
export function selectDefaultTemplate(source: unknown, origin: string): string | undefined {
  if (source === undefined || source === null) return undefined;
  if (typeof source === 'string') return source;
  if (!Array.isArray(source)) {
    throw new ModelFormatError(origin, 'chat_template must be a string or a list of {name, template} objects');
  }
  const named = source.map((entry, index): NamedChatTemplate => {
    if (typeof entry?.name !== 'string' || typeof entry?.template !== 'string') {
      throw new ModelFormatError(origin, `chat_template[${index}] must be an object with string "name" and "template"`);
    }
    return entry as NamedChatTemplate;
  });
  if (named.length === 0) return undefined;
  const chosen = named.length === 1 ? named[0] : named.find((entry) => entry.name === 'default');
  if (chosen === undefined) {
    const names = named.map((entry) => entry.name).join(', ');
    throw new ModelFormatError(origin, `chat_template lists several templates (${names}) but none is named "default"`);
  }
  return chosen.template;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
