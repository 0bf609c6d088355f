// Opens the fault harness (tests/e2e/harness/) in `page` and returns run(where, fn, ...args),
// which calls fn(opfsModule, ...args) in the page or in its dedicated worker ('page' |
// 'worker') and resolves with what fn returns. fn travels as source text: it may use only
// its arguments and the context's globals.
export async function openHarness(page, origin) {
  await page.goto(`${origin}/tests/e2e/harness/`);
  await page.evaluate(() => window.opfsReady);
  return (where, fn, ...args) => page.evaluate(([w, src, a]) => window.runIn(w, src, ...a), [where, fn.toString(), args]);
}

/** Polls `fn` until it returns something truthy (and returns that), or throws after `ms`. */
export async function until(what, fn, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What tests/wire-proxy.mjs at `proxy` counted of the uploads of asset `id`. */
export const wireUploads = async (proxy, id) => (await fetch(`${proxy}/__wire/uploads?id=${id}`)).json();
