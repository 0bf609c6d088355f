// Opens the fault harness (tests/e2e/harness/) in `page` and returns run(where, fn, ...args),
// which calls fn(opfsModule, ...args) in the page or in its dedicated worker ('page' |
// 'worker') and resolves with what fn returns. fn travels as source text: it may use only
// its arguments and the context's globals.
export async function openHarness(page, origin) {
  await page.goto(`${origin}/tests/e2e/harness/`);
  await page.evaluate(() => window.opfsReady);
  return (where, fn, ...args) => page.evaluate(([w, src, a]) => window.runIn(w, src, ...a), [where, fn.toString(), args]);
}
