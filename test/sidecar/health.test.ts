// A sidecar that stops answering is noticed (issue 16): the real sidecar, as a process, answers cskv/health at once,
// and the extension's health monitor reports it unresponsive once it is stopped (SIGSTOP: alive, silent).
import assert from 'node:assert/strict';
import * as cp from 'node:child_process';
import * as path from 'node:path';
import { after, test } from 'node:test';
import {
  InitializeRequest, InitializedNotification, type ProtocolConnection, StreamMessageReader, StreamMessageWriter,
  createProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { HealthMonitor } from '../../src/extension/healthMonitor';
import { HealthRequest, type SidecarOptions } from '../../src/protocol';
import { tempDir } from '../support/paths';

const children: cp.ChildProcess[] = [];
const connections: ProtocolConnection[] = [];
after(() => {
  for (const c of connections) c.dispose();
  for (const c of children) c.kill('SIGKILL');
});

async function startSidecar(): Promise<{ child: cp.ChildProcess; client: ProtocolConnection }> {
  const child = cp.spawn(process.execPath, [path.join(__dirname, '..', '..', 'src', 'sidecar', 'server.js'), '--stdio'], { stdio: 'pipe' });
  children.push(child);
  const client = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  connections.push(client);
  client.listen();
  await client.sendRequest(InitializeRequest.type, {
    processId: null, rootUri: null, capabilities: {},
    initializationOptions: {
      // No model: the sidecar reports `failed` and goes on answering.
      modelPath: path.join(tempDir('cskv-no-model-'), 'missing'), backend: 'onnx', cskv: 'off', contextTokenBudget: 0, storagePath: '',
      workspaceTrusted: false, excludes: [],
    } satisfies SidecarOptions,
  });
  await client.sendNotification(InitializedNotification.type, {});
  return { child, client };
}

test('the sidecar answers the health request with its state', async () => {
  const { client } = await startSidecar();
  const answer = await client.sendRequest(HealthRequest);
  assert.ok(['starting', 'failed'].includes(answer.state), `state ${answer.state}`);
});

test('the health monitor stays quiet while the sidecar answers and reports it once it stops answering', async () => {
  const { child, client } = await startSidecar();
  let unresponsive: number | undefined;
  const monitor = new HealthMonitor({
    ping: () => client.sendRequest(HealthRequest), onUnresponsive: (ms) => (unresponsive = ms), intervalMs: 50, timeoutMs: 1500,
  });
  monitor.start();
  try {
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(unresponsive, undefined, 'an answering sidecar is not reported');
    child.kill('SIGSTOP');
    const deadline = Date.now() + 15_000;
    while (unresponsive === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(unresponsive !== undefined && unresponsive >= 1500, `reported after ${unresponsive} ms of silence`);
  } finally {
    monitor.stop();
    child.kill('SIGKILL');
  }
});

test('the health monitor sends nothing while told not to (the model loading)', async () => {
  let pings = 0;
  let unresponsive = false;
  const monitor = new HealthMonitor({
    ping: () => {
      pings++;
      return new Promise(() => undefined); // never answered
    },
    shouldPing: () => false, onUnresponsive: () => (unresponsive = true), intervalMs: 10, timeoutMs: 30,
  });
  monitor.start();
  await new Promise((r) => setTimeout(r, 200));
  monitor.stop();
  assert.equal(pings, 0);
  assert.equal(unresponsive, false);
});
