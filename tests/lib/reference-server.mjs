// Starts the reference server (a built binary) on a free loopback port for a test and
// resolves once it listens: { url, proc, stop(signal) }. `url` is its origin.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

// Absolute, so a test may run the server in a directory of its own.
export const SERVER_BIN = resolve(process.env.OPFS_MEDIA_SERVER_BIN ?? 'target/debug/opfs-media-server');

export function startReferenceServer(args, { bin = SERVER_BIN, cwd, env } = {}) {
  const proc = spawn(bin, ['--bind', '127.0.0.1:0', ...args], { cwd, stdio: ['ignore', 'pipe', 'inherit'], env: { RUST_LOG: 'warn', ...process.env, ...env } });
  return new Promise((ok, fail) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) ok({ url: m[1], proc, stop: (signal = 'SIGTERM') => new Promise((done) => { proc.once('exit', done); proc.kill(signal); }) });
    });
    proc.on('exit', (code) => fail(new Error(`the reference server exited (${code}) before listening`)));
  });
}
