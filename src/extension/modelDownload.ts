// Downloads a model with `cskv-code pull --json` behind a cancellable progress notification. Cancel interrupts
// the pull as Ctrl-C does, so the partial file stays and the same download later resumes where it stopped.
import * as vscode from 'vscode';
import type { ModelsListing } from '../shared/foundModel';
import { describeFit } from '../shared/gpuFit';
import { MODEL_PRESETS, recommendedPreset } from '../shared/modelPresets';
import type { PullEvent } from '../shared/pullEvents';
import { runCli } from './cskvCli';
import type { Ctx } from './ctx';
import { PullProgress } from './pullProgress';

/**
 * Asks what to download: a preset (the one for this machine first, each saying whether it fits the GPU the
 * models listing found) or any repo / URL.
 */
export async function askDownloadTarget(listing?: ModelsListing): Promise<string | undefined> {
  const { preset: recommended, why } = recommendedPreset(listing?.gpu, listing?.presets);
  const other: vscode.QuickPickItem & { target?: string } = { label: '$(edit) Another model…', detail: 'A Hugging Face repo (ORG/NAME, ORG/NAME:Q4_K_M, ORG/NAME:FILE.gguf) or the URL of a .gguf file' };
  const items = [recommended, ...MODEL_PRESETS.filter((p) => p !== recommended)].map((p): vscode.QuickPickItem & { target?: string } => {
    const fit = listing?.presets.find((f) => f.target === p.target)?.gpuFit;
    return {
      label: p.label, description: p === recommended ? `recommended: ${why}` : p.target,
      detail: fit ? `${p.detail}; on the GPU it ${describeFit(fit).replace(/ your GPU/, '')}` : p.detail, target: p.target,
    };
  });
  const picked = await vscode.window.showQuickPick([...items, other], { title: 'Download a model (from huggingface.co)', ignoreFocusOut: true });
  if (!picked) return undefined;
  if (picked.target) return picked.target;
  const typed = await vscode.window.showInputBox({
    title: 'Download a model',
    prompt: 'A Hugging Face repo or a .gguf URL. Downloads go into the Hugging Face cache and resume if interrupted.',
    placeHolder: 'Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:q8_0',
    ignoreFocusOut: true,
    validateInput: (v) => (/^\s*(https?:\/\/\S+|[\w.-]+\/[\w.-]+(:\S+)?)\s*$/.test(v) ? undefined : 'ORG/NAME, ORG/NAME:QUANT, ORG/NAME:FILE.gguf or an http(s) URL'),
  });
  return typed?.trim() || undefined;
}

/** Runs the pull with a progress notification; resolves with the model's path, or undefined (cancelled, failed). */
export async function downloadModel(ctx: Ctx, target: string): Promise<string | undefined> {
  const state = new PullProgress();
  ctx.output.info(`pull ${target}`);
  const code = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `cskv: downloading ${target}`, cancellable: true },
    async (progress, token) => {
      const run = runCli(ctx.extension, ['pull', target, '--json'], (line) => {
        let event: PullEvent;
        try {
          event = JSON.parse(line) as PullEvent;
        } catch {
          ctx.output.info(line);
          return;
        }
        if (event.event !== 'progress') ctx.output.info(`pull: ${line}`);
        const step = state.step(event);
        if (step) progress.report(step);
      }, (line) => ctx.output.info(line));
      token.onCancellationRequested(() => run.interrupt());
      return run.exited;
    },
  );
  if (code === 0 && state.modelPath) return state.modelPath;
  const error = state.error;
  if (error?.kind === 'cancelled') {
    const choice = await vscode.window.showInformationMessage(`Download of ${target} stopped; what has arrived is kept, and downloading it again resumes there.`, 'Resume');
    return choice === 'Resume' ? downloadModel(ctx, target) : undefined;
  }
  const message = error?.message ?? `the download ended with exit code ${code}; the log says why`;
  const choice = await vscode.window.showErrorMessage(`cskv-code: ${message}`, 'Retry', 'Open Log');
  if (choice === 'Open Log') ctx.output.show();
  return choice === 'Retry' ? downloadModel(ctx, target) : undefined;
}
