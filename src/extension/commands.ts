// Every command, as a factory that takes the context (rust-analyzer's habit): the context decides whether the
// sidecar runs, so no command ever holds a dead client.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkModelFolder } from '../shared/settings';
import type { ChatViewProvider } from './chatView';
import { compressMarkdown, compressSummary, parseCompressResult } from './compressReport';
import { toggleLanguage } from './completionPolicy';
import { completionSettings, compressionSettings, modelPath, setDisabledLanguages, setModelPath } from './config';
import type { Ctx } from './ctx';
import { MemoryPanel } from './memoryPanel';

export type Cmd = (...args: unknown[]) => unknown;

/** With a selection: the selection goes into the chat as a chip (path and lines) and the question is typed there.
 * Without one: the chat's question box, or `question` asked at once when a caller passes one. */
export function askAboutWorkspace(chat: ChatViewProvider): Cmd {
  return async (question?: unknown) => {
    if (typeof question === 'string' && question.trim()) return chat.ask(question);
    const editor = vscode.window.activeTextEditor;
    if (editor && !editor.selection.isEmpty && editor.document.uri.scheme === 'file') return chat.attachSelection(editor);
    return chat.ask('', false);
  };
}

export function showMemory(ctx: Ctx): Cmd {
  return () => {
    if (!ctx.running && ctx.view.state !== 'no-model') void ctx.ensureStarted();
    MemoryPanel.show(ctx);
  };
}

export function selectModelFolder(ctx: Ctx): Cmd {
  return async () => {
    const current = modelPath();
    const picked = await vscode.window.showOpenDialog({
      title: 'Select a model folder (Hugging Face layout: config.json, *.safetensors, tokenizer.json)',
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: false,
      defaultUri: current ? vscode.Uri.file(current) : undefined,
      openLabel: 'Use this model',
    });
    const folder = picked?.[0]?.fsPath;
    if (!folder) return;
    const problem = checkModelFolder(folder);
    if (problem) {
      void vscode.window.showErrorMessage(problem);
      return;
    }
    // The settings listener restarts the sidecar with the new model.
    await setModelPath(folder);
    if (!ctx.running) void ctx.start();
  };
}

export function compressModel(ctx: Ctx): Cmd {
  return async () => {
    const model = modelPath();
    if (!model) {
      void vscode.window.showErrorMessage('Select a model folder first (cskv: Select Model Folder).');
      return;
    }
    const cli = ctx.extension.asAbsolutePath(path.join('dist', 'cli.js'));
    const { density, bits, window } = compressionSettings();
    const folder = vscode.workspace.workspaceFolders?.[0];
    const calib = folder && vscode.workspace.isTrusted ? ['--calib', folder.uri.fsPath] : [];
    if (calib.length === 0) {
      void vscode.window.showWarningMessage('The workspace is not trusted (or none is open), so calibration cannot read it. Open and trust a workspace with code to calibrate on.');
      return;
    }
    // Where `compress` writes by default: beside a model folder's weights, or FILE.cskv.safetensors beside a GGUF file.
    const factors = /\.gguf$/i.test(model) ? model.replace(/\.gguf$/i, '.cskv.safetensors') : path.join(model, 'cskv.safetensors');
    if (fs.existsSync(factors)) {
      const written = fs.statSync(factors).mtime.toLocaleString();
      const overwrite = await vscode.window.showWarningMessage(
        `The model already has CSKV factors (cskv.safetensors, written ${written}). Calibrate new ones and overwrite it?`,
        { modal: true, detail: `Density ${density}, ${bits}-bit, the last ${window} tokens uncompressed, calibrated on this workspace.` },
        'Overwrite',
      );
      if (overwrite !== 'Overwrite') return;
    }
    const args = [cli, 'compress', '--model', model, '--density', String(density), '--bits', String(bits), '--window', String(window), '--json', ...calib];
    ctx.output.info(`compress: ${args.slice(1).join(' ')}`);
    // A child process rather than a terminal: its progress shows in a cancellable notification, its table and
    // errors go to the log, and the result is known for certain when it exits.
    let stdout = '';
    const code = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'cskv: compressing the model', cancellable: true },
      (progress, token) => new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, args, { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
        const lines = (stream: NodeJS.ReadableStream, onLine: (line: string) => void): void => {
          let pending = '';
          stream.setEncoding('utf8');
          stream.on('data', (chunk: string) => {
            const parts = (pending + chunk).split('\n');
            pending = parts.pop()!;
            for (const line of parts) onLine(line);
          });
        };
        lines(child.stdout!, (line) => {
          stdout += `${line}\n`;
          ctx.output.info(line);
        });
        lines(child.stderr!, (line) => {
          ctx.output.info(line);
          if (line.startsWith('[compress] ')) progress.report({ message: line.slice('[compress] '.length) });
        });
        token.onCancellationRequested(() => child.kill());
        child.on('error', (err) => {
          ctx.output.error(`compress could not start: ${err.message}`);
          resolve(-1);
        });
        child.on('close', (exitCode) => resolve(token.isCancellationRequested ? null : exitCode));
      }),
    );
    if (code === 0) {
      const result = parseCompressResult(stdout);
      const summary = result ? compressSummary(result) : 'cskv.safetensors was written beside the model';
      const actions = result ? ['Restart to Use Them', 'Show Details'] : ['Restart to Use Them'];
      const choice = await vscode.window.showInformationMessage(`Compression finished: ${summary}.`, ...actions);
      if (choice === 'Show Details' && result) await showReport(`compression ${new Date().toISOString().slice(11, 19).replace(/:/g, '-')}.md`, compressMarkdown(result));
      if (choice === 'Restart to Use Them') await ctx.restart();
    } else if (code !== null) {
      const choice = await vscode.window.showErrorMessage('Compression failed; the log says why.', 'Retry', 'Open Log');
      if (choice === 'Open Log') ctx.output.show();
      if (choice === 'Retry') await vscode.commands.executeCommand('cskv.compressModel');
    }
  };
}

export function rebuildContext(ctx: Ctx): Cmd {
  return async () => {
    if (!ctx.view.trusted) {
      void vscode.window.showInformationMessage('This workspace is not trusted, so its files are not read into the model.');
      return;
    }
    try {
      await ctx.rebuildContext();
    } catch (err) {
      void vscode.window.showErrorMessage(`Rebuilding the workspace context failed: ${(err as Error).message}`);
    }
  };
}

/** Stops the update after an edit; what is resident stays in use, Rebuild Context resumes. */
export function stopUpdating(ctx: Ctx): Cmd {
  return async () => {
    try {
      if (!(await ctx.pauseSync())) void vscode.window.showInformationMessage('cskv-code is not updating the workspace context.');
    } catch (err) {
      void vscode.window.showErrorMessage(`Stopping the update failed: ${(err as Error).message}. The log may say more.`, 'Open Log')
        .then((choice) => choice && ctx.showLog());
    }
  };
}

export function restartSidecar(ctx: Ctx): Cmd {
  return () => ctx.restart();
}

export function stopSidecar(ctx: Ctx): Cmd {
  return () => ctx.stop();
}

export function showLog(ctx: Ctx): Cmd {
  return () => ctx.showLog();
}

export function clearChat(chat: ChatViewProvider): Cmd {
  return () => chat.clear();
}

export function newConversation(chat: ChatViewProvider): Cmd {
  return () => chat.newConversation();
}

export function switchConversation(chat: ChatViewProvider): Cmd {
  return () => chat.switchConversation();
}

export function stopAnswer(chat: ChatViewProvider): Cmd {
  return () => chat.stop();
}

export function toggleCompletionsForLanguage(): Cmd {
  return async () => {
    const languageId = vscode.window.activeTextEditor?.document.languageId;
    if (!languageId) {
      void vscode.window.showInformationMessage('Open a file of the language to switch inline completions for.');
      return;
    }
    const next = toggleLanguage(completionSettings().disabledLanguages, languageId);
    await setDisabledLanguages(next);
    void vscode.window.showInformationMessage(`cskv inline completions are now ${next.includes(languageId) ? 'off' : 'on'} for ${languageId}.`);
  };
}

/** Read-only Markdown documents the extension writes (the compression report), shown as a preview. */
export const REPORT_SCHEME = 'cskv-report';
const reports = new Map<string, string>();

export const reportProvider: vscode.TextDocumentContentProvider = {
  provideTextDocumentContent: (uri) => reports.get(uri.path) ?? '',
};

async function showReport(name: string, markdown: string): Promise<void> {
  const uri = vscode.Uri.from({ scheme: REPORT_SCHEME, path: `/${name}` });
  reports.set(uri.path, markdown);
  await vscode.commands.executeCommand('markdown.showPreview', uri);
}
