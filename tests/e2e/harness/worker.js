// The fault harness's dedicated worker: runs functions the page sends it against the built
// package, so the worker write paths (OPFS sync access handle) face the same faults.
import * as opfs from '/pkg/sync/opfs_media.js';

const ready = opfs.default();
self.onmessage = async ({ data: { seq, source, args } }) => {
  try {
    await ready;
    // A test's own function, sent as source text from the page (loopback test harness only).
    const fn = new Function(`return (${source})`)();
    self.postMessage({ seq, ok: await fn(opfs, ...args) });
  } catch (e) {
    self.postMessage({ seq, err: { name: e?.name, code: e?.code, message: String(e?.message ?? e) } });
  }
};
