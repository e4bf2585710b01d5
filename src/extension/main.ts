// Entry point: activate builds the context, the views and the commands; deactivate stops the sidecar.
import * as vscode from 'vscode';
import { ChatViewProvider } from './chatView';
import * as commands from './commands';
import { CompletionSwitchItem, showCompletionMenu } from './completionSwitch';
import { Ctx } from './ctx';
import { offerModelChoice, selectModel } from './modelPicker';
import { StatusBar } from './statusBar';

let ctx: Ctx | undefined;

export function activate(extension: vscode.ExtensionContext): void {
  ctx = new Ctx(extension);
  const chat = new ChatViewProvider(ctx);
  const register = (id: string, cmd: commands.Cmd): void => {
    extension.subscriptions.push(vscode.commands.registerCommand(id, cmd));
  };
  extension.subscriptions.push(
    ctx,
    chat,
    new StatusBar(ctx),
    new CompletionSwitchItem(ctx.completions),
    vscode.workspace.registerTextDocumentContentProvider(commands.REPORT_SCHEME, commands.reportProvider),
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewType, chat, { webviewOptions: { retainContextWhenHidden: true } }),
  );
  register('cskv.ask', commands.askAboutWorkspace(chat));
  register('cskv.showMemory', commands.showMemory(ctx));
  register('cskv.selectModel', selectModel(ctx));
  register('cskv.selectModelFolder', commands.selectModelFolder(ctx));
  register('cskv.compressModel', commands.compressModel(ctx));
  register('cskv.rebuildContext', commands.rebuildContext(ctx));
  register('cskv.stopUpdating', commands.stopUpdating(ctx));
  register('cskv.restartSidecar', commands.restartSidecar(ctx));
  register('cskv.stopSidecar', commands.stopSidecar(ctx));
  register('cskv.showLog', commands.showLog(ctx));
  register('cskv.clearChat', commands.clearChat(chat));
  register('cskv.newConversation', commands.newConversation(chat));
  register('cskv.switchConversation', commands.switchConversation(chat));
  register('cskv.stopAnswer', commands.stopAnswer(chat));
  register('cskv.toggleCompletionsForLanguage', commands.toggleCompletionsForLanguage());
  register('cskv.toggleCompletions', () => ctx?.completions.toggle());
  register('cskv.completionsMenu', () => ctx && showCompletionMenu(ctx.completions));
  // With a model configured the sidecar starts now, so the workspace is resident by the first question.
  void ctx.start();
  void offerModelChoice(ctx);
}

export async function deactivate(): Promise<void> {
  await ctx?.stop();
  ctx = undefined;
}
