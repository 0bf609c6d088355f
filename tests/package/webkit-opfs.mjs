// The built package (pkg/sync) on WebKit's real OPFS, page and module worker: imports, reads
// back (a stream of views too), syncs to the reference server and deletes, as an app would,
// in WebKitGTK with its OPFS flags on (scripts/webkit-opfs.py; the pages are
// tests/package/webkit/). Needs pkg/ (scripts/build-pkg.sh) and the server's debug build.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve } from '../../scripts/serve.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';

test('the built package imports, reads, syncs and deletes on WebKit\'s OPFS, in a page and a worker', { timeout: 180_000 }, async () => {
  assert.ok(existsSync('pkg/sync/opfs_media.js'), 'pkg/ is missing: run scripts/build-pkg.sh');
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  const dir = mkdtempSync(join(tmpdir(), 'opfs-pkg-webkit-'));
  const api = await startReferenceServer(['--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`, '--cors-origins', '*']);
  const site = await serve({ root: '.' });
  try {
    const url = `http://127.0.0.1:${site.address().port}/tests/package/webkit/?api=${encodeURIComponent(api.url)}`;
    const driver = spawn('xvfb-run', ['-a', '/usr/bin/python3', 'scripts/webkit-opfs.py', url, '--data-dir', join(dir, 'profile'), '--timeout', '120'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    driver.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    const code = await new Promise((ok) => driver.on('exit', ok));
    assert.equal(code, 0, `webkit-opfs.py exited with ${code}`);
    const lines = out.split('\n').filter((l) => l.startsWith('test '));
    for (const where of ['page', 'worker']) {
      for (const name of ['opens_on_opfs', 'imports_and_reads_back', 'imports_a_stream_of_views', 'syncs_to_the_server', 'deletes']) {
        assert.ok(lines.includes(`test ${where}/${name} ... ok`), `${where}/${name}: ${lines.find((l) => l.startsWith(`test ${where}/${name} `)) ?? 'did not run'}`);
      }
    }
    assert.match(out, /^test result: ok\. 10 passed; 0 failed$/m);
  } finally {
    site.close();
    api.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
