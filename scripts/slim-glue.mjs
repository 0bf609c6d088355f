// Drops the JSDoc blocks from wasm-bindgen's JS glue (pkg/<dir>/opfs_media.js): the same docs
// ship in opfs_media.d.ts, which editors and TypeScript read (`@ts-self-types`), so in the .js
// they are only download (~2 KB gzipped per entry point). Whole-line `/** ... */` blocks only;
// code is untouched (the count of `export`s and the remaining text are checked).
// Usage: node scripts/slim-glue.mjs pkg/web/opfs_media.js ...
import { readFileSync, writeFileSync } from 'node:fs';

const DOC = /^[ \t]*\/\*\*\n(?:[ \t]*\*(?!\/).*\n)*?[ \t]*\*\/\n/gm;
for (const file of process.argv.slice(2)) {
  const src = readFileSync(file, 'utf8');
  const out = src.replace(DOC, '');
  const exports = (s) => (s.match(/^export /gm) || []).length;
  if (exports(out) !== exports(src) || out.includes('/**')) throw new Error(`${file}: unexpected doc comment shape`);
  writeFileSync(file, out);
}
