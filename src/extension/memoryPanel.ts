// The KV memory view (a webview panel, one at a time): per-layer bars of the full and compressed branches, the
// totals against a full fp16 cache, GPU memory on CUDA, and a chart of memory over time. While it is visible it
// asks the sidecar every two seconds, so the chart moves even when nothing else happens.
import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import type { FromMemoryWebview, ToMemoryWebview } from './webviewMessages';
import { localResourceRoots, webviewHtml } from './webviewHtml';

const POLL_MS = 2000;

export class MemoryPanel implements vscode.Disposable {
  static readonly viewType = 'cskv.memory';
  private static current: MemoryPanel | undefined;

  private readonly disposables: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;

  static show(ctx: Ctx): void {
    if (MemoryPanel.current) {
      MemoryPanel.current.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(MemoryPanel.viewType, 'KV Memory', vscode.ViewColumn.Active, {
      enableScripts: true,
      localResourceRoots: localResourceRoots(ctx.extension.extensionUri),
    });
    MemoryPanel.current = new MemoryPanel(panel, ctx);
  }

  private constructor(private readonly panel: vscode.WebviewPanel, private readonly ctx: Ctx) {
    panel.iconPath = vscode.Uri.joinPath(ctx.extension.extensionUri, 'media', 'cskv.svg');
    panel.webview.html = webviewHtml(panel.webview, ctx.extension.extensionUri, {
      title: 'KV Memory',
      script: 'memory.js',
      style: 'memory.css',
      body: `<header id="state" role="status"></header>
<section id="totals" aria-label="Totals"></section>
<section aria-label="Memory over time"><h2>Over time</h2><div id="chart"></div></section>
<section aria-label="Per layer"><h2>Per layer</h2><div id="legend"></div><div id="layers"></div></section>
<section id="files" aria-label="Resident files"></section>`,
    });
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.onDidChangeViewState(() => this.schedule()),
      panel.webview.onDidReceiveMessage((m: FromMemoryWebview) => {
        if (m.type === 'ready') this.post();
        else if (m.type === 'command') void vscode.commands.executeCommand(m.command);
      }),
      ctx.onDidChangeView(() => this.post()),
    );
    this.schedule();
  }

  private schedule(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (!this.panel.visible) return;
    void this.ctx.refreshMemory();
    this.timer = setInterval(() => void this.ctx.refreshMemory(), POLL_MS);
  }

  private post(): void {
    const message: ToMemoryWebview = { type: 'update', view: this.ctx.view, samples: this.ctx.samples };
    void this.panel.webview.postMessage(message);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearInterval(this.timer);
    MemoryPanel.current = undefined;
    for (const d of this.disposables) d.dispose();
    this.panel.dispose();
  }
}
