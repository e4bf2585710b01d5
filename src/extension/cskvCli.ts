// Runs the bundled command line (dist/cli.js) in a child process of the editor's own Node, line by line. The
// model list and downloads go through it rather than the sidecar: they are needed exactly when the sidecar has
// no model to run, they are one-shot jobs with their own lifetime (a download outlives a sidecar restart), and
// `models --json` / `pull --json` are the CLI's stable JSON, so no protocol message is added for them.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { runtimeEnv } from '../shared/runtimeEnv';

export interface CliRun {
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Stops the command as Ctrl-C would: a pull keeps its partial file for the next run. */
  interrupt(): void;
}

export function runCli(
  extension: vscode.ExtensionContext,
  args: string[],
  onStdoutLine: (line: string) => void,
  onStderrLine: (line: string) => void = () => undefined,
): CliRun {
  const cli = extension.asAbsolutePath(path.join('dist', 'cli.js'));
  const child = spawn(process.execPath, [cli, ...args], { env: { ...runtimeEnv(process.env), ELECTRON_RUN_AS_NODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = (stream: NodeJS.ReadableStream, onLine: (line: string) => void): void => {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (pending + chunk).split('\n');
      pending = parts.pop()!;
      for (const line of parts) onLine(line);
    });
    stream.on('end', () => pending && onLine(pending));
  };
  lines(child.stdout, onStdoutLine);
  lines(child.stderr, onStderrLine);
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      onStderrLine(`could not start ${cli}: ${err.message}`);
      resolve(-1);
    });
    child.on('close', (code) => resolve(code));
  });
  return { exited, interrupt: () => void child.kill('SIGINT') };
}
