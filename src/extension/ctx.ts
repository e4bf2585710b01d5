// The extension's context: owns the sidecar's lifecycle (start on first use or at start-up when a model is set,
// restart with backoff after a crash, stop), the state every view shows, the memory samples of the chart, and the
// routing of streamed answers. Views and commands talk to the sidecar only through here, so none of them ever
// holds a dead client.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import {
  AnswerChunkNotification, type AskParams, AskRequest, type AskResult, HealthRequest, MemoryChangedNotification, MemoryRequest, type MemoryStatus,
  PauseSyncRequest, RebuildContextRequest, StatusNotification,
} from '../protocol';
import { type SidecarExit, createClient } from './client';
import { RESTART_SETTINGS, modelPath, sidecarOptions } from './config';
import { SpeedNotification } from '../protocol';
import { CompletionSwitch } from './completionSwitch';
import { type StatusView, isUpdate } from './format';
import { HealthMonitor } from './healthMonitor';
import { Notifications } from './notifications';
import { RestartPolicy } from './restartPolicy';
import type { MemorySample } from './webviewMessages';

const MAX_SAMPLES = 900;
/** The sidecar answers the health request at once unless it is hung; a minute and a half of silence is a hang. */
const HEALTH_INTERVAL_MS = 15_000;
const HEALTH_TIMEOUT_MS = 90_000;

export class Ctx implements vscode.Disposable {
  readonly output: vscode.LogOutputChannel;
  private client: LanguageClient | undefined;
  private sidecar: (() => { pid?: number | undefined; kill(signal?: NodeJS.Signals): boolean } | undefined) | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  /** Bumped by every start and stop, so that a late event of an old client is ignored. */
  private generation = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private health: HealthMonitor | undefined;
  private readonly policy = new RestartPolicy();
  private recovering = false;
  /** The workspace was resident once since this start: later indexing is a quiet update. */
  private wasResident = false;
  /** Workspace files edited since the context was last wholly resident (relative paths). */
  private readonly edited = new Set<string>();
  private readonly notifications: Notifications;
  /** The global on/off/snooze switch of inline completions. */
  readonly completions: CompletionSwitch;
  private viewState: StatusView;
  /** The `cskv.updating` context key as last set (it shows cskv: Stop Updating in the palette). */
  private updatingKey = false;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly answerListeners = new Map<string, (text: string) => void>();
  readonly samples: MemorySample[] = [];

  private readonly viewEmitter = new vscode.EventEmitter<StatusView>();
  /** The state, progress or memory changed. */
  readonly onDidChangeView = this.viewEmitter.event;
  private readonly memoryEmitter = new vscode.EventEmitter<MemoryStatus>();
  readonly onDidChangeMemory = this.memoryEmitter.event;

  constructor(readonly extension: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('cskv-code', { log: true });
    this.viewState = { state: modelPath() ? 'stopped' : 'no-model', message: modelPath() ? 'not started yet' : '', trusted: vscode.workspace.isTrusted };
    this.notifications = new Notifications({
      retry: () => void this.restart(),
      restart: () => void this.restart(),
      stop: (reason) => void this.stop(reason),
      showLog: () => this.showLog(),
    });
    this.completions = new CompletionSwitch(extension.globalState);
    this.disposables.push(
      this.output, this.viewEmitter, this.memoryEmitter, this.notifications, this.completions,
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.contentChanges.length === 0 || e.document.uri.scheme !== 'file' || !vscode.workspace.getWorkspaceFolder(e.document.uri)) return;
        this.edited.add(vscode.workspace.asRelativePath(e.document.uri, false));
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (RESTART_SETTINGS.some((s) => e.affectsConfiguration(s))) void this.settingsChanged();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        this.output.info('workspace trusted: restarting the sidecar so that it reads the workspace');
        this.update({ trusted: true });
        if (this.client || this.starting) void this.restart();
      }),
    );
  }

  get view(): StatusView {
    return this.viewState;
  }

  get memory(): MemoryStatus | undefined {
    return this.viewState.memory;
  }

  get running(): boolean {
    return this.client !== undefined;
  }

  /** The sidecar's process id while it runs (the log names it; tests use it). */
  get sidecarPid(): number | undefined {
    return this.sidecar?.()?.pid;
  }

  /** Whether an inline completion request may be sent now. */
  acceptsCompletions(): boolean {
    return this.client !== undefined && (this.viewState.state === 'ready' || this.viewState.state === 'indexing') && this.completions.on;
  }

  /** Starts the sidecar unless it runs; undefined when no model is configured (the user is told). */
  async ensureStarted(): Promise<LanguageClient | undefined> {
    if (this.client) return this.client;
    if (this.starting) return this.starting;
    return this.start();
  }

  async start(): Promise<LanguageClient | undefined> {
    clearTimeout(this.restartTimer);
    const model = modelPath();
    if (!model) {
      this.update({ state: 'no-model', message: '', progress: undefined, memory: undefined });
      return undefined;
    }
    const generation = ++this.generation;
    this.wasResident = false;
    this.update({ state: 'starting', message: this.recovering ? 'restarting after a crash' : 'starting', progress: undefined, updating: undefined });
    const storage = (this.extension.storageUri ?? this.extension.globalStorageUri).fsPath;
    fs.mkdirSync(storage, { recursive: true });
    const serverModule = this.extension.asAbsolutePath(path.join('dist', 'server.js'));
    const { client, process: sidecar } = createClient(serverModule, sidecarOptions(storage), this.output, {
      started: (pid) => this.output.info(`sidecar started (pid ${pid ?? '?'}) for model ${model}`),
      crashed: (exit) => {
        // The old client is stopped already; disposing it releases what it still holds.
        void client.dispose().catch(() => undefined);
        if (generation === this.generation) this.crashed(exit);
      },
      acceptsCompletions: () => this.acceptsCompletions(),
    });
    this.sidecar = sidecar;
    client.onNotification(StatusNotification, (p) => {
      if (generation !== this.generation) return;
      const firstReady = this.recovering && (p.state === 'ready' || p.state === 'indexing');
      if (p.state === 'ready') {
        this.wasResident = true;
        this.edited.clear();
      }
      const updating = p.state === 'indexing' && this.wasResident ? [...this.edited].sort() : undefined;
      this.update({ state: p.state, message: p.message, progress: p.progress, updating });
      if (firstReady) {
        this.recovering = false;
        this.output.info('the sidecar was restarted and is running again');
        this.notifications.recovered();
      }
      if (p.state === 'failed') this.showFailure(p.message);
    });
    client.onNotification(MemoryChangedNotification, (m) => {
      if (generation === this.generation) this.memoryChanged(m);
    });
    client.onNotification(SpeedNotification, (p) => {
      if (generation === this.generation) this.update({ speed: { ...this.viewState.speed, [p.kind]: p } });
    });
    client.onNotification(AnswerChunkNotification, (p) => this.answerListeners.get(p.id)?.(p.text));
    this.starting = (async () => {
      try {
        await client.start();
        if (generation !== this.generation) return undefined;
        this.client = client;
        this.watchHealth(client, sidecar, generation);
        return client;
      } catch (err) {
        if (generation === this.generation) {
          this.output.error(`the sidecar did not start: ${messageOf(err)}`);
          this.update({ state: 'failed', message: `the model could not be started: ${messageOf(err)}` });
          this.notifications.error('the model could not be started. The log says why.', ['Retry', 'Open Log']);
        }
        return undefined;
      } finally {
        if (generation === this.generation) this.starting = undefined;
      }
    })();
    return this.starting;
  }

  /** Kills a sidecar that stops answering (a crash is reported by the client; a hang is not), so the crash path
   * restarts it with backoff. */
  private watchHealth(client: LanguageClient, sidecar: NonNullable<Ctx['sidecar']>, generation: number): void {
    this.health?.stop();
    this.health = new HealthMonitor({
      ping: () => client.sendRequest(HealthRequest),
      shouldPing: () => this.viewState.state === 'ready' || this.viewState.state === 'indexing',
      intervalMs: HEALTH_INTERVAL_MS,
      timeoutMs: HEALTH_TIMEOUT_MS,
      onUnresponsive: (silentMs) => {
        if (generation !== this.generation) return;
        this.output.error(`the sidecar (pid ${sidecar()?.pid ?? '?'}) has not answered for ${Math.round(silentMs / 1000)} s: restarting it`);
        sidecar()?.kill('SIGKILL');
      },
    });
    this.health.start();
  }

  /** Stops the sidecar; the state becomes `stopped` (or `no-model`). */
  async stop(message = 'stopped'): Promise<void> {
    clearTimeout(this.restartTimer);
    this.health?.stop();
    this.generation++;
    const client = this.client ?? (await this.starting?.catch(() => undefined));
    const sidecar = this.sidecar;
    this.client = undefined;
    this.starting = undefined;
    this.sidecar = undefined;
    if (client) {
      try {
        await client.stop(4000);
      } catch (err) {
        this.output.warn(`the sidecar did not stop cleanly: ${messageOf(err)}`);
      }
      await client.dispose().catch(() => undefined);
    }
    // A sidecar stuck in native code ignores `exit`.
    sidecar?.()?.kill('SIGKILL');
    this.update({ state: modelPath() ? 'stopped' : 'no-model', message, progress: undefined, updating: undefined });
  }

  /** Stops and starts again; a restart asked for by the user forgets earlier crashes. */
  async restart(): Promise<LanguageClient | undefined> {
    this.policy.reset();
    this.recovering = false;
    await this.stop('restarting');
    return this.start();
  }

  async ask(params: AskParams, token: vscode.CancellationToken, onText: (text: string) => void): Promise<AskResult> {
    const client = await this.ensureStarted();
    if (!client) throw new Error(this.viewState.state === 'no-model' ? 'No model is configured.' : this.viewState.message);
    this.answerListeners.set(params.id, onText);
    try {
      return await client.sendRequest(AskRequest, params, token);
    } finally {
      this.answerListeners.delete(params.id);
    }
  }

  /** Asks the sidecar for its memory now (the chart's clock); undefined while it has none. */
  async refreshMemory(): Promise<MemoryStatus | undefined> {
    const client = this.client;
    if (!client || (this.viewState.state !== 'ready' && this.viewState.state !== 'indexing')) return this.memory;
    try {
      const m = await client.sendRequest(MemoryRequest);
      this.memoryChanged(m as MemoryStatus);
      return m as MemoryStatus;
    } catch {
      return this.memory;
    }
  }

  async rebuildContext(): Promise<void> {
    const client = await this.ensureStarted();
    if (!client) return;
    // A rebuild reads everything again: progress as at the first start, not a quiet update.
    this.wasResident = false;
    await client.sendRequest(RebuildContextRequest);
  }

  /** Stops the update after an edit (the sidecar keeps what is resident); false when there was none to stop. */
  async pauseSync(): Promise<boolean> {
    const client = this.client;
    if (!client || !isUpdate(this.viewState)) return false;
    const paused = await client.sendRequest(PauseSyncRequest);
    // The paused memory status now, not after the sidecar's throttle.
    if (paused) await this.refreshMemory();
    return paused;
  }

  showLog(): void {
    this.output.show(true);
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables) d.dispose();
  }

  private memoryChanged(m: MemoryStatus): void {
    const kv = m.kv;
    const last = this.samples[this.samples.length - 1];
    const now = Date.now();
    // Two samples within 200 ms carry nothing for the chart: keep the newer.
    if (last && now - last.t < 200) this.samples.pop();
    this.samples.push({
      t: now, totalBytes: kv.totalBytes, fullBytes: kv.fullBytes, compressedBytes: kv.compressedBytes, fp16Bytes: kv.fp16Bytes,
      tokens: kv.tokens, gpuUsedBytes: m.gpu?.usedBytes,
    });
    if (this.samples.length > MAX_SAMPLES) this.samples.splice(0, this.samples.length - MAX_SAMPLES);
    this.update({ memory: m });
    this.memoryEmitter.fire(m);
  }

  private crashed(exit: SidecarExit | undefined): void {
    this.health?.stop();
    this.client = undefined;
    this.starting = undefined;
    this.generation++;
    const how = exit?.signal ? `killed by ${exit.signal}` : exit?.code !== undefined && exit.code !== null ? `exit code ${exit.code}` : 'connection lost';
    const decision = this.policy.crashed(Date.now());
    // The log has the process details (signal, exit code); the UI says what happened and what comes next.
    if (decision.delayMs === undefined) {
      this.output.error(`the sidecar stopped unexpectedly (${how}) ${decision.crashes} times in a few minutes; it is left stopped`);
      const message = `the model stopped unexpectedly ${decision.crashes} times in a few minutes and is left stopped`;
      this.update({ state: 'stopped', message, progress: undefined, updating: undefined });
      this.notifications.error(`${message}. Restart it, or open the log to see why.`, ['Restart', 'Open Log']);
      return;
    }
    const seconds = Math.round(decision.delayMs / 100) / 10;
    this.output.warn(`the sidecar stopped unexpectedly (${how}); restarting in ${seconds} s`);
    const message = `stopped unexpectedly; restarting in ${seconds} s`;
    this.recovering = true;
    this.update({ state: 'starting', message, progress: undefined, updating: undefined });
    this.notifications.restarting(`the model ${message}`);
    this.restartTimer = setTimeout(() => void this.start(), decision.delayMs);
  }

  private async settingsChanged(): Promise<void> {
    if (!modelPath()) {
      await this.stop();
      return;
    }
    this.output.info('settings changed: restarting the sidecar');
    await this.restart();
  }

  private showFailure(message: string): void {
    this.output.error(message);
    this.notifications.error(message, ['Retry', 'Select Model', 'Open Log']);
  }

  private update(change: Partial<StatusView>): void {
    this.viewState = { ...this.viewState, ...change };
    // Memory is known only from a running session; a stopping, failed or reloading sidecar holds none.
    if (change.state !== undefined && change.state !== 'ready' && change.state !== 'indexing' && change.memory === undefined) {
      this.viewState.memory = undefined;
    }
    this.notifications.viewChanged(this.viewState);
    const updating = isUpdate(this.viewState);
    if (updating !== this.updatingKey) {
      this.updatingKey = updating;
      void vscode.commands.executeCommand('setContext', 'cskv.updating', updating);
    }
    this.viewEmitter.fire(this.viewState);
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
