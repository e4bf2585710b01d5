// The chat's conversations, kept per workspace (workspaceState): several of them, one current; the one cleared last
// can be brought back (Undo). Over a Memento only, so the unit tests run it without VS Code.
import type { StoredTurn } from './webviewMessages';

export interface Conversation {
  id: string;
  /** The first question, shortened. */
  title: string;
  /** ms since the epoch of the last answer. */
  updated: number;
  turns: StoredTurn[];
}

/** What of vscode.Memento this needs. */
export interface ConversationState {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Thenable<void>;
}

interface Stored {
  current: string;
  conversations: Conversation[];
}

const KEY = 'cskv.chat.conversations';
/** Where one conversation was kept before there were several: taken over once. */
const SINGLE_HISTORY_KEY = 'cskv.chat.history';
/** Turns kept per conversation (the resident workspace is the long context, not the chat). */
export const MAX_TURNS = 40;
/** Conversations kept; the oldest go first. */
export const MAX_CONVERSATIONS = 30;
const TITLE_CHARS = 60;

export class Conversations {
  private lastCleared: { conversation: Conversation; stored: Stored } | undefined;

  constructor(private readonly state: ConversationState, private readonly newId: () => string, private readonly now: () => number = Date.now) {}

  current(): Conversation {
    const stored = this.load();
    return stored.conversations.find((c) => c.id === stored.current) ?? empty(stored.current);
  }

  /** Newest first, without empty ones. */
  list(): Conversation[] {
    return this.load().conversations.filter((c) => c.turns.length > 0).sort((a, b) => b.updated - a.updated);
  }

  /** Adds a question and its answer to the current conversation. */
  async append(turns: StoredTurn[]): Promise<void> {
    const stored = this.load();
    const current = stored.conversations.find((c) => c.id === stored.current) ?? empty(stored.current);
    const updated: Conversation = {
      ...current,
      title: current.title || titleOf(turns),
      updated: this.now(),
      turns: [...current.turns, ...turns].slice(-MAX_TURNS),
    };
    await this.save({ current: stored.current, conversations: [updated, ...stored.conversations.filter((c) => c.id !== updated.id)] });
  }

  /** A new, empty conversation becomes current (the current one is kept, unless it is empty). */
  async startNew(): Promise<Conversation> {
    const stored = this.load();
    const id = this.newId();
    await this.save({ current: id, conversations: stored.conversations.filter((c) => c.turns.length > 0) });
    return empty(id);
  }

  /** Makes a kept conversation current; false if there is none with that id. */
  async select(id: string): Promise<boolean> {
    const stored = this.load();
    if (!stored.conversations.some((c) => c.id === id && c.turns.length > 0)) return false;
    await this.save({ current: id, conversations: stored.conversations.filter((c) => c.turns.length > 0 || c.id === id) });
    return true;
  }

  /** Deletes the current conversation (a new empty one becomes current); `undoClear` brings it back. */
  async clear(): Promise<void> {
    const stored = this.load();
    const current = stored.conversations.find((c) => c.id === stored.current);
    this.lastCleared = current && current.turns.length > 0 ? { conversation: current, stored } : undefined;
    await this.save({ current: this.newId(), conversations: stored.conversations.filter((c) => c.id !== stored.current && c.turns.length > 0) });
  }

  get canUndoClear(): boolean {
    return this.lastCleared !== undefined;
  }

  /** Puts the conversation cleared last back as the current one; false when there is nothing to bring back. */
  async undoClear(): Promise<boolean> {
    const cleared = this.lastCleared;
    this.lastCleared = undefined;
    if (!cleared) return false;
    const stored = this.load();
    const others = stored.conversations.filter((c) => c.id !== cleared.conversation.id && c.turns.length > 0);
    await this.save({ current: cleared.conversation.id, conversations: [cleared.conversation, ...others] });
    return true;
  }

  private load(): Stored {
    const stored = this.state.get<Stored>(KEY);
    if (stored && typeof stored.current === 'string' && Array.isArray(stored.conversations)) return stored;
    const single = this.state.get<StoredTurn[]>(SINGLE_HISTORY_KEY);
    const id = this.newId();
    if (Array.isArray(single) && single.length > 0) {
      return { current: id, conversations: [{ id, title: titleOf(single), updated: this.now(), turns: single }] };
    }
    return { current: id, conversations: [] };
  }

  private async save(stored: Stored): Promise<void> {
    const kept = stored.conversations.sort((a, b) => b.updated - a.updated).slice(0, MAX_CONVERSATIONS);
    await this.state.update(KEY, { current: stored.current, conversations: kept });
    if (this.state.get(SINGLE_HISTORY_KEY) !== undefined) await this.state.update(SINGLE_HISTORY_KEY, undefined);
  }
}

function empty(id: string): Conversation {
  return { id, title: '', updated: 0, turns: [] };
}

function titleOf(turns: readonly StoredTurn[]): string {
  const question = turns.find((t) => t.role === 'user')?.content.replace(/\s+/g, ' ').trim() ?? '';
  return question.length > TITLE_CHARS ? `${question.slice(0, TITLE_CHARS - 1)}…` : question;
}
