// Excalidraw with its image files kept by opfs-media (the recipe from opfs-media/excalidraw):
// the scene is saved to localStorage WITHOUT files, the files go to the library, and on load
// the scene's files come back from OPFS through addFiles.
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { Excalidraw } from '@excalidraw/excalidraw';
import '@excalidraw/excalidraw/index.css';
import init, { MediaLibrary } from 'opfs-media';
import { saveExcalidrawFiles, loadExcalidrawFiles, fileIdsOf } from 'opfs-media/excalidraw';

const SCENE = 'opfs-media-check-scene';

await init();
const library = await MediaLibrary.open({ name: 'excalidraw-check' });
window.library = library;
const elements = JSON.parse(localStorage.getItem(SCENE) ?? '[]');

function onChange(elements, appState, files) {
  localStorage.setItem(SCENE, JSON.stringify(elements));
  saveExcalidrawFiles(library, files).then((ids) => { window.savedFiles = ids; }, (e) => { window.saveError = e; });
}

async function onApi(api) {
  if (!api || window.excalidrawAPI) return;
  window.excalidrawAPI = api;
  api.addFiles(await loadExcalidrawFiles(library, fileIdsOf(elements)));
  window.filesLoaded = true;
}

createRoot(document.getElementById('root')).render(
  createElement(Excalidraw, { initialData: { elements }, onChange, excalidrawAPI: onApi }),
);
