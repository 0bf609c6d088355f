// The sync bench in a dedicated worker, where the service is deployed (bench/sync-core.js).
import { paramsFrom, runSyncBench } from './sync-core.js';

runSyncBench(paramsFrom(self.location.search))
  .then((rows) => self.postMessage({ rows }))
  .catch((e) => self.postMessage({ error: String(e?.stack ?? e) }));
