import { roundtrip } from './roundtrip.js';

roundtrip('worker').then((r) => postMessage(r), (e) => postMessage({ error: String(e?.stack ?? e) }));
