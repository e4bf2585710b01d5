// The LanguageClient for the sidecar: how it is spawned (the extension host's own Node, over stdio), which
// documents it follows, and the error handler that hands crashes to the context's restart policy.
import * as cp from 'node:child_process';
import * as vscode from 'vscode';
import {
  CloseAction, type CloseHandlerResult, ErrorAction, type ErrorHandlerResult, LanguageClient, type LanguageClientOptions,
  RevealOutputChannelOn, type ServerOptions,
} from 'vscode-languageclient/node';
import type { SidecarOptions } from '../protocol';
import { inlineCompletionMiddleware } from './completions';
import { runtimeEnv } from '../shared/runtimeEnv';

export interface SidecarExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ClientHooks {
  /** The sidecar process started (its pid, for the log). */
  started(pid: number | undefined): void;
  /** The connection closed without a stop being asked for; `exit` is known when the process has exited. */
  crashed(exit: SidecarExit | undefined): void;
  /** Whether the sidecar can take completion requests now. */
  acceptsCompletions(): boolean;
}

export function createClient(
  serverModule: string,
  options: SidecarOptions,
  output: vscode.LogOutputChannel,
  hooks: ClientHooks,
): { client: LanguageClient; process: () => cp.ChildProcess | undefined } {
  let child: cp.ChildProcess | undefined;
  let exit: SidecarExit | undefined;
  const serverOptions: ServerOptions = async () => {
    // process.execPath is the extension host's Node (Electron run as Node in desktop VS Code).
    child = cp.spawn(process.execPath, [serverModule, '--stdio'], {
      env: { ...runtimeEnv(process.env), ELECTRON_RUN_AS_NODE: '1' },
      stdio: 'pipe',
      windowsHide: true,
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
    });
    hooks.started(child.pid);
    return child;
  };

  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file' }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher('**/*') },
    initializationOptions: options,
    outputChannel: output,
    // Failures are shown by the status bar and the chat view; the client's own popups would say it twice.
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    connectionOptions: { maxRestartCount: 0 },
    middleware: inlineCompletionMiddleware(hooks.acceptsCompletions),
    errorHandler: {
      error: (_error, _message, count): ErrorHandlerResult => ({
        action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
        handled: true,
      }),
      closed: (): CloseHandlerResult => {
        // The exit event can trail the closed stream by a moment.
        setTimeout(() => hooks.crashed(exit), 100);
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
  };
  const client = new LanguageClient('cskv', 'cskv-code sidecar', serverOptions, clientOptions);
  return { client, process: () => child };
}
