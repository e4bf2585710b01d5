// cskv: Select Model: a quick pick of the models already on this machine (`cskv-code models --json`: the Hugging
// Face cache, LM Studio, llama.cpp's cache, Ollama), with Download… and Browse… beside them; the choice goes into
// the user's cskv.modelPath. At the first start without a chosen model it is offered once.
import * as vscode from 'vscode';
import { formatBytes } from '../shared/formatBytes';
import type { FoundModel, ModelsListing } from '../shared/foundModel';
import { describeFit, describeGpu } from '../shared/gpuFit';
import { checkModelFolder } from '../shared/settings';
import { runCli } from './cskvCli';
import { configuredModelPath, contextTokenBudget, modelPath, nativeLibrary, setModelPath } from './config';
import type { Ctx } from './ctx';
import { askDownloadTarget, downloadModel } from './modelDownload';

/** globalState key: the first-run offer was made (it is made once per installation). */
const OFFERED_KEY = 'cskv.modelChoiceOffered';

type PickItem = vscode.QuickPickItem & { action: 'use' | 'cannot' | 'download' | 'browse-file' | 'browse-folder' | 'builtin'; model?: ListedModel };

type ListedModel = ModelsListing['models'][number];

/** The models discovery finds and the GPU they are fitted to (undefined, logged, when the command line fails). */
export async function listModels(ctx: Ctx): Promise<ModelsListing | undefined> {
  let stdout = '';
  // A budget of 0 (no workspace files) still needs room for the conversation: fit for one token at least.
  const args = ['models', '--json', '--budget', String(Math.max(1, contextTokenBudget()))];
  const addon = nativeLibrary();
  if (addon) args.push('--native-library', addon);
  const code = await runCli(ctx.extension, args, (line) => (stdout += `${line}\n`), (line) => ctx.output.warn(`models: ${line}`)).exited;
  if (code !== 0) return undefined;
  try {
    const listing = JSON.parse(stdout) as ModelsListing;
    ctx.output.info(`models: ${listing.models.length} found; GPU: ${describeGpu(listing.gpu)}`);
    return listing;
  } catch (err) {
    ctx.output.error(`models --json gave no JSON: ${(err as Error).message}`);
    return undefined;
  }
}

/** One line about a found model: format, type, size, architecture, parameters, factors. */
export function describeModel(m: FoundModel): string {
  const parts = [m.format === 'gguf' ? 'GGUF' : 'safetensors', m.quantisation, m.sizeBytes ? formatBytes(m.sizeBytes) : undefined, m.architecture, m.hasCskvFactors ? 'CSKV factors' : undefined];
  return parts.filter(Boolean).join(' · ');
}

/** The heading of the usable models: the GPU they are fitted to, or that there is none (the log says why). */
function usableHeading(listing: ModelsListing | undefined): string {
  if (!listing) return 'On this machine';
  const gpu = listing.gpu;
  if (!gpu.found) return 'On this machine (no NVIDIA GPU found)';
  if (gpu.problem) return `On this machine (${gpu.name}: the CUDA engine cannot use it)`;
  return `On this machine (${gpu.name}, ${formatBytes(gpu.freeBytes)} free)`;
}

export function modelItems(listing: ModelsListing | undefined, current: string): PickItem[] {
  const models = listing?.models ?? [];
  const source: Record<FoundModel['source'], string> = { huggingface: 'Hugging Face cache', lmstudio: 'LM Studio', 'llama.cpp': 'llama.cpp cache', ollama: 'Ollama', folder: 'folder' };
  const usable = models.filter((m) => m.loadable);
  const broken = models.filter((m) => !m.loadable);
  const items: PickItem[] = [];
  if (usable.length) items.push({ label: usableHeading(listing), kind: vscode.QuickPickItemKind.Separator, action: 'use' });
  for (const m of usable) {
    items.push({
      label: `${m.format === 'gguf' ? '$(file-binary)' : '$(folder)'} ${m.name}`, description: `${describeModel(m)} · ${source[m.source]}${m.path === current ? ' · current' : ''}`,
      detail: m.gpuFit ? `${describeFit(m.gpuFit)} · ${m.path}` : m.path, action: 'use', model: m,
    });
  }
  if (broken.length) items.push({ label: 'Found, but cannot run here', kind: vscode.QuickPickItemKind.Separator, action: 'cannot' });
  for (const m of broken) items.push({ label: `$(warning) ${m.name}`, description: describeModel(m), detail: `cannot load: ${m.reason}`, action: 'cannot', model: m });
  items.push(
    { label: 'Other', kind: vscode.QuickPickItemKind.Separator, action: 'download' },
    { label: '$(cloud-download) Download a model…', detail: 'From huggingface.co into its cache, with progress; resumes if interrupted', action: 'download' },
    { label: '$(file) Browse for a .gguf file…', action: 'browse-file' },
    { label: '$(folder-opened) Browse for a model folder…', detail: 'Hugging Face layout: config.json, *.safetensors, tokenizer.json', action: 'browse-folder' },
  );
  if (configuredModelPath()) items.push({ label: '$(home) Use the built-in model', detail: 'The small model that ships with cskv-code (a demonstration)', action: 'builtin' });
  return items;
}

export function selectModel(ctx: Ctx): () => Promise<void> {
  return async () => {
    const pick = vscode.window.createQuickPick<PickItem>();
    pick.title = 'cskv: Select Model';
    pick.placeholder = 'Looking for models on this machine…';
    pick.matchOnDescription = true;
    pick.matchOnDetail = true;
    pick.ignoreFocusOut = true;
    pick.busy = true;
    pick.items = modelItems(undefined, modelPath());
    pick.show();
    let listing: ModelsListing | undefined;
    void listModels(ctx).then((found) => {
      listing = found;
      // The list grows under the user's pointer: the entry they are on stays the active one.
      const active = pick.activeItems[0]?.label;
      pick.items = modelItems(found, modelPath());
      const same = pick.items.find((i) => i.label === active);
      if (same) pick.activeItems = [same];
      pick.busy = false;
      pick.placeholder = found?.models.some((m) => m.loadable) ? 'Pick a model, download one, or browse' : 'No model that runs here was found: download one, or browse';
    });
    const chosen = await new Promise<PickItem | undefined>((resolve) => {
      pick.onDidAccept(() => resolve(pick.selectedItems[0]));
      pick.onDidHide(() => resolve(undefined));
    });
    pick.dispose();
    if (!chosen) return;
    switch (chosen.action) {
      case 'use':
        return use(ctx, chosen.model!.path);
      case 'cannot':
        void vscode.window.showWarningMessage(`${chosen.model!.name} cannot run here: ${chosen.model!.reason}`);
        return;
      case 'download':
        return downloadAndUse(ctx, listing);
      case 'browse-file':
      case 'browse-folder': {
        const folders = chosen.action === 'browse-folder';
        const picked = await vscode.window.showOpenDialog({
          title: folders ? 'Select a model folder (config.json, *.safetensors, tokenizer.json)' : 'Select a GGUF model file',
          canSelectFolders: folders, canSelectFiles: !folders, canSelectMany: false,
          filters: folders ? undefined : { 'GGUF models': ['gguf'] },
          openLabel: 'Use this model',
        });
        if (picked?.[0]) return use(ctx, picked[0].fsPath);
        return;
      }
      case 'builtin':
        await setModelPath('');
        return;
    }
  };
}

/** Asks what to download (the presets' GPU fits from `listing`), downloads it, and makes it the model. */
async function downloadAndUse(ctx: Ctx, listing: ModelsListing | undefined): Promise<void> {
  const target = await askDownloadTarget(listing);
  const downloaded = target && (await downloadModel(ctx, target));
  if (downloaded) await use(ctx, downloaded);
}

async function use(ctx: Ctx, model: string): Promise<void> {
  const problem = checkModelFolder(model);
  if (problem) {
    void vscode.window.showErrorMessage(problem);
    return;
  }
  // A changed setting restarts the sidecar (Ctx's settings listener); starting here as well would start it twice.
  const changed = configuredModelPath() !== model;
  await setModelPath(model);
  if (!changed) void ctx.ensureStarted();
}

/**
 * The first start without a chosen model: with no model at all the picker opens; with the built-in model in use,
 * one notification says which models were found (or offers a download). Made once per installation.
 */
export async function offerModelChoice(ctx: Ctx): Promise<void> {
  if (configuredModelPath() || ctx.extension.globalState.get<boolean>(OFFERED_KEY)) return;
  await ctx.extension.globalState.update(OFFERED_KEY, true);
  if (!modelPath()) {
    await vscode.commands.executeCommand('cskv.selectModel');
    return;
  }
  const listing = await listModels(ctx);
  const usable = (listing?.models ?? []).filter((m) => m.loadable);
  const choose = usable.length ? 'Choose a Model' : 'Download a Model';
  const message = usable.length
    ? `cskv-code is using its small built-in model. ${usable.length === 1 ? `${usable[0]!.name} is` : `${usable.length} models are`} on this machine and can run here.`
    : 'cskv-code is using its small built-in model, a demonstration. A real code model answers far better.';
  const choice = await vscode.window.showInformationMessage(message, choose, 'Keep the Built-in Model');
  if (choice === 'Choose a Model') await vscode.commands.executeCommand('cskv.selectModel');
  if (choice === 'Download a Model') await downloadAndUse(ctx, listing);
}
