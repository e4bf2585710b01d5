// The status bar item: `KV 1.4 GB · −82%` when ready, the sidecar's state otherwise; a click opens the memory
// view (or the model folder picker when no model is set).
import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import { type StatusView, TOOLTIP_COMMANDS, statusText, statusTooltip } from './format';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly subscription: vscode.Disposable;

  constructor(ctx: Ctx) {
    this.item = vscode.window.createStatusBarItem('cskv.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'cskv-code KV memory';
    this.subscription = ctx.onDidChangeView((view) => this.render(view));
    this.render(ctx.view);
    this.item.show();
  }

  private render(view: StatusView): void {
    this.item.text = statusText(view);
    const tooltip = new vscode.MarkdownString(statusTooltip(view), true);
    // Its links may run the Stop updating / Rebuild Context commands and nothing else.
    tooltip.isTrusted = { enabledCommands: [...TOOLTIP_COMMANDS] };
    this.item.tooltip = tooltip;
    this.item.command = view.state === 'no-model' ? 'cskv.selectModel' : 'cskv.showMemory';
    this.item.backgroundColor =
      view.state === 'failed' ? new vscode.ThemeColor('statusBarItem.errorBackground') :
      view.state === 'stopped' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.accessibilityInformation = { label: statusText(view).replace(/\$\([^)]*\)\s*/g, ''), role: 'button' };
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
