// The rules in front of inline completions: a debounce that gives up when the request is cancelled (a newer
// keystroke), and the per-language switch. Pure (the token is anything shaped like vscode.CancellationToken).

export interface CancellationLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

/** Resolves true after `ms`, or false as soon as `token` is cancelled (a newer keystroke). */
export function delay(ms: number, token: CancellationLike): Promise<boolean> {
  if (token.isCancellationRequested) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      listener.dispose();
      resolve(!token.isCancellationRequested);
    }, ms);
    const listener = token.onCancellationRequested(() => {
      clearTimeout(timer);
      listener.dispose();
      resolve(false);
    });
  });
}

/** Whether inline completions are on for a language: the switch, less the languages switched off one by one. */
export function completionsEnabledFor(languageId: string, enabled: boolean, disabledLanguages: readonly string[]): boolean {
  return enabled && !disabledLanguages.includes(languageId);
}

/** The list with `languageId` switched: added when it was on, removed when it was off. */
export function toggleLanguage(disabledLanguages: readonly string[], languageId: string): string[] {
  return disabledLanguages.includes(languageId)
    ? disabledLanguages.filter((l) => l !== languageId)
    : [...disabledLanguages, languageId].sort();
}
