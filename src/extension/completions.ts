// Inline completions: the LanguageClient registers the provider for textDocument/inlineCompletion (LSP 3.18); this
// middleware puts the editor-side rules in front of it. A new keystroke cancels the previous request's token, which
// ends its debounce here or, once sent, reaches the sidecar as $/cancelRequest and stops the generation there.
import * as vscode from 'vscode';
import type { Middleware } from 'vscode-languageclient/node';
import { completionsEnabledFor, delay } from './completionPolicy';
import { completionSettings } from './config';

export function inlineCompletionMiddleware(acceptsCompletions: () => boolean): Middleware {
  return {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      // No workspace text goes to the model before the user trusts the workspace.
      if (!vscode.workspace.isTrusted || !acceptsCompletions()) return null;
      const settings = completionSettings(document.languageId);
      if (!completionsEnabledFor(document.languageId, settings.enabled, settings.disabledLanguages)) return null;
      // An explicit request (Alt+\) is not debounced.
      const wait = context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke ? 0 : settings.debounceMs;
      if (!(await delay(wait, token))) return null;
      return next(document, position, context, token);
    },
  };
}
