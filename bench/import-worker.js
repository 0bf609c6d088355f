// The import and list bench (bench/bench.js) in a dedicated worker, as apps that import in
// the background run it; bench/index.html?ctx=worker starts it and shows its result.
import { runBench, paramsOf } from './bench.js';

self.onmessage = async ({ data: search }) => {
  try {
    self.postMessage({ result: await runBench(paramsOf(search)) });
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
