// The extension's settings, read in one place. Settings that decide what code or model is loaded (model path,
// backend, native library, factor file) are declared "scope": "machine" in package.json: VS Code then takes them
// from the user's settings (the remote machine's settings in a remote window, code-server included) and ignores
// them in a workspace's .vscode/settings.json, which is what `get` returns here.
import * as vscode from 'vscode';
import { type SidecarOptions, isCompressedBits } from '../protocol';
import { defaultModelDir } from '../shared/defaultModel';
import { type Backend, DEFAULTS } from '../shared/settings';

export const SECTION = 'cskv';

/** Settings whose change needs a new sidecar. */
export const RESTART_SETTINGS = [
  'modelPath', 'backend', 'nativeLibrary', 'compression.factors', 'compression.window', 'compression.bits', 'context.tokenBudget',
].map((s) => `${SECTION}.${s}`);

function config(scope?: vscode.ConfigurationScope): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION, scope);
}

/** A machine-scoped setting: VS Code's effective value, which never comes from a workspace for this scope (VS Code
 * drops a workspace's value of such a setting before any extension sees it). */
function userSetting<T>(key: string, fallback: T): T {
  return config().get<T>(key) ?? fallback;
}

/** cskv.modelPath, or the bundled default model (models/house) while the setting is empty and that model ships. */
export function modelPath(): string {
  return configuredModelPath() || defaultModelDir() || '';
}

/** cskv.modelPath as the user set it; empty when no model was chosen (the built-in model, if any, is in use). */
export function configuredModelPath(): string {
  return expandHome(userSetting('modelPath', '').trim());
}

export function sidecarOptions(storagePath: string): SidecarOptions {
  const c = config();
  const bits = c.get<number | null>('compression.bits', null);
  const window = c.get<number | null>('compression.window', null);
  return {
    modelPath: modelPath(),
    backend: userSetting<Backend>('backend', DEFAULTS.backend),
    nativeLibrary: nativeLibrary(),
    cskv: expandHome(userSetting<string>('compression.factors', DEFAULTS.cskv).trim()) || DEFAULTS.cskv,
    window: typeof window === 'number' && window > 0 ? Math.floor(window) : undefined,
    bits: isCompressedBits(bits) ? bits : undefined,
    contextTokenBudget: contextTokenBudget(),
    storagePath,
    workspaceTrusted: vscode.workspace.isTrusted,
    excludes: excludePatterns(),
  };
}

/** cskv.context.tokenBudget: most tokens of workspace files kept resident. */
export function contextTokenBudget(): number {
  return Math.max(0, Math.floor(config().get<number>('context.tokenBudget', DEFAULTS.contextTokenBudget)));
}

/** cskv.nativeLibrary: the addon to load instead of the bundled one; undefined for the bundled one. */
export function nativeLibrary(): string | undefined {
  return expandHome(userSetting('nativeLibrary', '').trim()) || undefined;
}

/** files.exclude and search.exclude patterns that are switched on (conditional "when" patterns count as on). */
export function excludePatterns(): string[] {
  const patterns = new Set<string>();
  for (const [section, key] of [['files', 'exclude'], ['search', 'exclude']] as const) {
    const value = vscode.workspace.getConfiguration(section).get<Record<string, boolean | { when: string }>>(key) ?? {};
    for (const [pattern, on] of Object.entries(value)) if (on) patterns.add(pattern);
  }
  return [...patterns];
}

export interface CompletionSettings {
  enabled: boolean;
  debounceMs: number;
  disabledLanguages: string[];
}

export function completionSettings(languageId?: string): CompletionSettings {
  const c = config(languageId ? { languageId } : undefined);
  return {
    enabled: c.get<boolean>('completions.enabled', true),
    debounceMs: Math.max(0, c.get<number>('completions.debounceMs', DEFAULTS.completionDebounceMs)),
    disabledLanguages: c.get<string[]>('completions.disabledLanguages', []),
  };
}

/** Most tokens of one chat answer. */
export function maxAnswerTokens(): number {
  return Math.max(1, config().get<number>('chat.maxAnswerTokens', DEFAULTS.answerTokens));
}

export async function setDisabledLanguages(languages: string[]): Promise<void> {
  await config().update('completions.disabledLanguages', languages, vscode.ConfigurationTarget.Global);
}

export async function setModelPath(folder: string): Promise<void> {
  // An empty path removes the setting: the built-in model is used again.
  await config().update('modelPath', folder || undefined, vscode.ConfigurationTarget.Global);
}

export function compressionSettings(): { density: number; bits: number; window: number } {
  const c = config();
  return {
    density: c.get<number>('compression.density', DEFAULTS.density),
    bits: c.get<number | null>('compression.bits', null) ?? DEFAULTS.bits,
    window: c.get<number | null>('compression.window', null) ?? DEFAULTS.window,
  };
}

function expandHome(p: string): string {
  if (p === '~' || p.startsWith('~/')) return (process.env.HOME ?? '') + p.slice(1);
  return p;
}
