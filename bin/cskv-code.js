#!/usr/bin/env node
'use strict';
// glibc reads its malloc tunables when a process starts (src/shared/runtimeEnv.ts: huge pages, a 5x faster prefill of
// 8k tokens on a 2-core host): where this process lacks them, the command runs in a child started with them. The
// child gets a terminal's Ctrl-C itself; a SIGTERM or SIGHUP sent to this process is passed on.
const { spawn } = require('node:child_process');
const { runtimeEnv } = require('../dist/runtimeEnv.js');

const env = runtimeEnv(process.env);
if (env !== process.env) {
  const child = spawn(process.execPath, [__filename, ...process.argv.slice(2)], { stdio: 'inherit', env });
  process.on('SIGINT', () => {});
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    process.stderr.write(`cskv-code: ${err.message}\n`);
    process.exitCode = 1;
  });
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? 128 + (require('node:os').constants.signals[signal] ?? 0);
  });
} else {
  require('../dist/cli.js').main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err) => { process.stderr.write(`cskv-code: ${err && err.message ? err.message : err}\n`); process.exitCode = 1; },
  );
}
