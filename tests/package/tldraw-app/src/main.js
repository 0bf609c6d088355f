// tldraw with opfs-media as its asset store (the recipe from opfs-media/tldraw), persisted
// locally by tldraw (persistenceKey): dropped images live in OPFS, not in the document.
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { Tldraw } from 'tldraw';
import 'tldraw/tldraw.css';
import init, { MediaLibrary } from 'opfs-media';
import { createTldrawAssetStore } from 'opfs-media/tldraw';

await init();
const library = await MediaLibrary.open({ name: 'tldraw-check' });
window.library = library;
const assets = createTldrawAssetStore(library);
createRoot(document.getElementById('root')).render(
  createElement(Tldraw, { persistenceKey: 'opfs-media-check', assets, onMount: (editor) => { window.editor = editor; } }),
);
