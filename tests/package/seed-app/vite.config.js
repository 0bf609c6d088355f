// A same-origin deployment: the app's origin forwards /api to the media server (here the
// reference server the test starts; OPFS_MEDIA_API is its origin), in the dev server and in
// `vite preview` alike. The session cookie rides along; the page never sees a token.
const proxy = { '/api': { target: process.env.OPFS_MEDIA_API ?? 'http://127.0.0.1:8787' } };
export default {
  server: { proxy },
  preview: { proxy },
  // The dev server's dependency pre-bundling would move the JS away from its .wasm.
  optimizeDeps: { exclude: ['opfs-media', 'opfs-media/sync'] },
};
