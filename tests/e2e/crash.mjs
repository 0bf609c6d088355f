// A real crash mid-import: a persistent Chromium profile, a 300 MB import under way in a page
// (createWritable) or a worker (sync access handle), the browser killed with SIGKILL once the
// profile's disk shows the write in progress, then the browser started again on the profile.
// The temporary file must be in OPFS at the restart (so the kill landed mid-import), and
// nothing half-written may surface: no record without its bytes, the temporary file swept,
// every earlier asset intact, the library usable.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { openHarness } from './lib/harness.mjs';

const BIG = 300_000_000;
// Blocks in use, not apparent size. Chromium renames files while du walks the profile, and du
// then exits 1 (`cannot access`) but still prints the total of what it saw: take that.
const du = (dir) => {
  const r = spawnSync('du', ['-sk', dir], { encoding: 'utf8' });
  const kb = Number(r.stdout.split('\t')[0]);
  assert.ok(r.stdout && Number.isFinite(kb), `du ${dir}: ${r.stderr}`);
  return 1024 * kb;
};
const launch = (dir) => chromium.launchPersistentContext(dir, { executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
// Every process of this profile (browser, renderers, GPU, utility), by its --user-data-dir.
const killProfile = (dir) => { try { execFileSync('pkill', ['-KILL', '-f', `user-data-dir=${dir}`]); } catch { /* none left */ } };

const harness = async (context, origin) => openHarness(context.pages()[0] ?? await context.newPage(), origin);

// The library keeps every asset in OPFS (`smallFileBytes: 0`): this test is about OPFS files
// (a temporary one mid-write, the committed one beside it), not where small files live.
async function importKeep(opfs, name) {
  const lib = await opfs.MediaLibrary.open({ name, smallFileBytes: 0 });
  const bytes = new Uint8Array(1_000_000).map((_, i) => (i * 7) & 255);
  return (await lib.importFile(new File([bytes], 'keep.bin'))).id;
}

// Starts the big import and returns at once (the kill ends it). With `stream` the source is a
// ReadableStream: in a worker the library writes it through a sync access handle (a whole
// Blob goes through createWritable there too, which the page case covers).
async function startBig(opfs, name, size, stream) {
  const lib = await opfs.MediaLibrary.open({ name, smallFileBytes: 0 });
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) bytes[i] = i & 255;
  const file = new File([bytes], 'big.bin');
  (stream ? lib.importFile(file.stream(), { name: 'big.bin', type: 'application/octet-stream' }) : lib.importFile(file)).catch(() => {});
  return true;
}

// After the restart: what OPFS holds before the library opens (the killed import's temporary
// file, if the kill landed mid-write), then what the library and OPFS hold once its start-up
// sweep ran.
async function inspect(opfs, name, keepId) {
  const walkSizes = async () => {
    const out = [];
    const walk = async (dir, path) => {
      for await (const [n, h] of dir.entries()) {
        if (h.kind === 'file') out.push([`${path}/${n}`, (await h.getFile()).size]);
        else await walk(h, `${path}/${n}`);
      }
    };
    await walk(await navigator.storage.getDirectory(), '');
    return out;
  };
  const atRestart = await walkSizes();
  const lib = await opfs.MediaLibrary.open({ name, sweepGraceMs: 0, smallFileBytes: 0 }); // no other tab exists
  const records = await lib.list();
  const sizes = [];
  for (const r of records) sizes.push([r.id, r.size, (await lib.getFile(r.id)).size]);
  const keep = new Uint8Array(await (await lib.getFile(keepId)).arrayBuffer());
  const keepIntact = keep.length === 1_000_000 && keep.every((b, i) => b === ((i * 7) & 255));
  const files = [];
  const walk = async (dir, path) => { for await (const [n, h] of dir.entries()) { if (h.kind === 'file') files.push(`${path}/${n}`); else await walk(h, `${path}/${n}`); } };
  await walk(await navigator.storage.getDirectory(), '');
  const later = await lib.importFile(new File([new Uint8Array(10_000)], 'later.bin'));
  return { atRestart, ids: records.map((r) => r.id), sizes, keepIntact, files, later: (await lib.get(later.id)).size };
}

for (const where of ['page', 'worker']) {
  test(`browser killed (SIGKILL) mid-import in a ${where}: restart on the profile, nothing half-written`, { timeout: 180_000 }, async () => {
    assert.ok(existsSync('pkg/sync/opfs_media.js'), 'pkg/ is missing: run scripts/build-pkg.sh');
    const site = await serve({ root: '.' });
    const origin = `http://127.0.0.1:${site.address().port}`;
    const dir = mkdtempSync(join(tmpdir(), 'opfs-crash-'));
    const name = `crash-${where}`;
    try {
      let context = await launch(dir);
      let run = await harness(context, origin);
      const keepId = await run(where, importKeep, name);
      const base = du(dir);
      await run(where, startBig, name, BIG, where === 'worker');
      // Kill once 50 MB of the 300 MB are on disk: verifiably mid-write.
      const deadline = Date.now() + 60_000;
      while (du(dir) - base < 50_000_000) {
        assert.ok(Date.now() < deadline, 'the import never reached the disk');
        await new Promise((r) => setTimeout(r, 10));
      }
      // Kill at once (a round trip to ask whether the import finished would let it finish);
      // the restart shows it had not: no record of it.
      killProfile(dir);
      const onDisk = du(dir) - base;
      await context.close().catch(() => {});
      console.log(`${where}: killed with ${(onDisk / 1e6).toFixed(0)} MB of ${BIG / 1e6} MB on disk`);

      context = await launch(dir);
      run = await harness(context, origin);
      const r = await run(where, inspect, name, keepId);
      await context.close();
      console.log(`${where}: OPFS at restart: ${JSON.stringify(r.atRestart)}`);
      // The kill landed mid-write: the import's temporary file was on disk, with bytes in it,
      // when the browser died (nothing has run on the profile since), and the sweep took it.
      // (`<id>.tmp`; where Chromium writes through createWritable the bytes sit in its swap
      // file `<id>.tmp.crswap` and `<id>.tmp` is empty.) Growth of the profile alone proved
      // nothing: an import that had not started writing passed every other check.
      const isTemp = (f) => f.endsWith('.tmp') || f.endsWith('.crswap');
      const owner = (f) => f.split('/').pop().replace(/\.crswap$/, '').replace(/\.tmp$/, '');
      const temps = r.atRestart.filter(([f]) => isTemp(f) && owner(f) !== keepId);
      assert.ok(temps.some(([, size]) => size > 0), `the killed import's temporary file, with bytes, at restart: ${JSON.stringify(r.atRestart)}`);
      // The worker wrote through a sync access handle: its bytes are in `<id>.tmp` itself
      // (createWritable would have put them in Chromium's `.crswap`).
      if (where === 'worker') assert.ok(temps.some(([f, size]) => f.endsWith('.tmp') && size > 0), `sync access handle: bytes in <id>.tmp: ${JSON.stringify(r.atRestart)}`);
      assert.deepEqual(r.ids, [keepId], 'only the earlier asset: no record of the killed import (if the big one is listed, it finished before the kill)');
      for (const [id, size, stored] of r.sizes) assert.equal(stored, size, `${id}: its bytes are all there`);
      assert.ok(r.keepIntact, 'the earlier asset is byte-identical');
      const leftovers = r.files.filter(isTemp);
      assert.deepEqual(leftovers, [], 'the temporary file was swept');
      assert.equal(r.files.length, 1, `one file per asset (keep): ${r.files}`);
      assert.equal(r.later, 10_000, 'the library takes new imports');
    } finally {
      killProfile(dir);
      site.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
