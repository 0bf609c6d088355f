// The same checks in a dedicated (module) worker.
import { run } from './checks.js';

self.onmessage = async ({ data }) => {
  const results = await run('worker', data.api, (line) => self.postMessage({ line }));
  self.postMessage({ done: true, results });
};
