// The global switch of inline completions: on, off (the cskv.completions.enabled setting, user-wide) or snoozed
// for a while (kept in globalState, so a reload does not wake it early). Its status bar item opens a menu with
// the three, plus the per-language switch, as Copilot's and Tabby's do.
import * as vscode from 'vscode';
import { SECTION, completionSettings } from './config';

const SNOOZE_KEY = 'cskv.completions.snoozedUntil';
const SNOOZE_CHOICES = [
  { label: '5 minutes', minutes: 5 },
  { label: '30 minutes', minutes: 30 },
  { label: '1 hour', minutes: 60 },
];

export class CompletionSwitch implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private readonly emitter = new vscode.EventEmitter<void>();
  /** On, off or snoozed changed. */
  readonly onDidChange = this.emitter.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly state: vscode.Memento) {
    this.subscription = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(`${SECTION}.completions`)) this.emitter.fire();
    });
    this.armTimer();
  }

  /** Not snoozed (the setting and the per-language list are checked per request). */
  get on(): boolean {
    return this.snoozedUntil === undefined;
  }

  /** Switched on user-wide (the setting, whatever a language overrides). */
  get enabled(): boolean {
    return completionSettings().enabled;
  }

  /** ms since the epoch while snoozed. */
  get snoozedUntil(): number | undefined {
    const until = this.state.get<number>(SNOOZE_KEY);
    return until !== undefined && until > Date.now() ? until : undefined;
  }

  async setEnabled(enabled: boolean): Promise<void> {
    await this.state.update(SNOOZE_KEY, undefined);
    await vscode.workspace.getConfiguration(SECTION).update('completions.enabled', enabled, vscode.ConfigurationTarget.Global);
    this.armTimer();
    this.emitter.fire();
  }

  async snooze(minutes: number): Promise<void> {
    await this.state.update(SNOOZE_KEY, Date.now() + minutes * 60_000);
    this.armTimer();
    this.emitter.fire();
  }

  /** On when off or snoozed, off when on. */
  async toggle(): Promise<void> {
    await this.setEnabled(!(this.enabled && this.on));
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.subscription.dispose();
    this.emitter.dispose();
  }

  /** Wakes the switch (and its status bar item) when a snooze ends. */
  private armTimer(): void {
    clearTimeout(this.timer);
    const until = this.snoozedUntil;
    if (until !== undefined) this.timer = setTimeout(() => this.emitter.fire(), until - Date.now() + 50);
  }
}

/** The status bar item of the switch: a sparkle when on, crossed out when off, a clock while snoozed. */
export class CompletionSwitchItem implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly completions: CompletionSwitch) {
    this.item = vscode.window.createStatusBarItem('cskv.completions', vscode.StatusBarAlignment.Right, 99);
    this.item.name = 'cskv-code inline completions';
    this.item.command = 'cskv.completionsMenu';
    this.subscriptions = [completions.onDidChange(() => this.render()), vscode.window.onDidChangeActiveTextEditor(() => this.render())];
    this.render();
    this.item.show();
  }

  private render(): void {
    const snoozed = this.completions.snoozedUntil;
    const language = vscode.window.activeTextEditor?.document.languageId;
    const languageOff = language !== undefined && completionSettings(language).disabledLanguages.includes(language);
    if (!this.completions.enabled) {
      this.item.text = '$(circle-slash) completions off';
      this.item.tooltip = 'cskv-code inline completions are off. Click to switch them on or snooze them.';
    } else if (snoozed !== undefined) {
      this.item.text = `$(clock) completions snoozed`;
      this.item.tooltip = `cskv-code inline completions are snoozed until ${new Date(snoozed).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}. Click to resume.`;
    } else {
      this.item.text = languageOff ? '$(sparkle) off for this language' : '$(sparkle)';
      this.item.tooltip = languageOff
        ? `cskv-code inline completions are off for ${language}. Click for the switches.`
        : 'cskv-code inline completions are on. Click to switch them off or snooze them.';
    }
    this.item.accessibilityInformation = { label: typeof this.item.tooltip === 'string' ? this.item.tooltip : 'cskv-code inline completions', role: 'button' };
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.item.dispose();
  }
}

/** The menu of the switch's status bar item. */
export async function showCompletionMenu(completions: CompletionSwitch): Promise<void> {
  type Item = vscode.QuickPickItem & { run?: () => Promise<unknown> | unknown };
  const on = completions.enabled && completions.on;
  const language = vscode.window.activeTextEditor?.document.languageId;
  const items: Item[] = [
    on
      ? { label: '$(circle-slash) Turn Off Inline Completions', run: () => completions.setEnabled(false) }
      : { label: '$(sparkle) Turn On Inline Completions', run: () => completions.setEnabled(true) },
    { label: 'Snooze', kind: vscode.QuickPickItemKind.Separator },
    ...SNOOZE_CHOICES.map((c): Item => ({ label: `$(clock) Snooze for ${c.label}`, run: () => completions.snooze(c.minutes) })),
  ];
  if (language) {
    items.push(
      { label: 'This language', kind: vscode.QuickPickItemKind.Separator },
      { label: `Toggle for ${language}`, run: () => vscode.commands.executeCommand('cskv.toggleCompletionsForLanguage') },
    );
  }
  const picked = await vscode.window.showQuickPick(items, { title: 'cskv-code inline completions', placeHolder: on ? 'On' : completions.enabled ? 'Snoozed' : 'Off' });
  await picked?.run?.();
}
