// Three entry pages share one bundle graph: the resident PWA, the dispatcher console and the
// operator console. The API is same-origin (FastAPI serves dist/), so no proxy is needed in
// production; `npm run dev` proxies /api to a local server.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, "index.html"),
        dispatcher: resolve(import.meta.dirname, "dispatcher.html"),
        operator: resolve(import.meta.dirname, "operator.html"),
        health: resolve(import.meta.dirname, "health.html"),
        emissions: resolve(import.meta.dirname, "emissions.html"),
      },
    },
  },
  server: { proxy: { "/api": "http://127.0.0.1:8000", "/.well-known": "http://127.0.0.1:8000" } },
});
