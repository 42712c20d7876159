// Three entry pages share one bundle graph: the resident PWA, the dispatcher console and the
// operator console. The API is same-origin (FastAPI serves dist/), so no proxy is needed in
// production; `npm run dev` proxies /api to a local server.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { minimal2023Preset } from "@vite-pwa/assets-generator/config";
import { defineConfig } from "vite";
import { VitePWA } from "vite-plugin-pwa";
import { pagePartials } from "./page-partials.js";

// Swagger UI for /api/v1/docs, copied from the swagger-ui-dist package into dist/swagger-ui/:
// the API docs render without internet (FastAPI's default loads them from a CDN).
const SWAGGER_FILES = ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"];
function swaggerUiAssets() {
  return {
    name: "tsunagu-swagger-ui-assets",
    generateBundle() {
      const dir = resolve(import.meta.dirname, "node_modules", "swagger-ui-dist");
      for (const f of SWAGGER_FILES) {
        this.emitFile({ type: "asset", fileName: `swagger-ui/${f}`, source: readFileSync(resolve(dir, f)) });
      }
    },
  };
}

// vite-plugin-pwa links the manifest from every page it builds; only the resident page is the
// installable app (the consoles are not: installing from one would open the resident page).
function manifestOnResidentPageOnly() {
  return {
    name: "tsunagu-manifest-resident-only",
    enforce: "post",
    transformIndexHtml: {
      order: "post",
      handler(html, ctx) {
        return ctx.filename.endsWith("/index.html") ? html : html.replace(/<link rel="manifest"[^>]*>/, "");
      },
    },
  };
}

export default defineConfig({
  plugins: [
    // Shared page parts (frontend/partials/*.html: the planning and CO2 pages' header).
    pagePartials(resolve(import.meta.dirname, "partials")),
    swaggerUiAssets(),
    // Workbox service worker (dist/sw.js): precaches the built pages, bundles and icons so the
    // resident app opens offline (its booked trips come from the page's own saved copy); it
    // takes control at once, leaves the API and other origins (map tiles) to the network, and
    // never caches error answers (only the build's own files are cached, by revision).
    VitePWA({
      strategies: "generateSW",
      filename: "sw.js",
      registerType: "autoUpdate",
      injectRegister: false,
      // The web app manifest (dist/manifest.webmanifest, linked from the resident page). Its
      // PNG icons - 64, 192 and 512 px, a 512 px maskable one, the apple-touch icon and
      // favicon.ico - are drawn from public/icon.svg at every build by
      // @vite-pwa/assets-generator (sharp), so they never drift from the SVG: browsers'
      // installability checks want 192 and 512 px raster icons, not an SVG alone.
      manifest: {
        name: "Tsunagu つなぐ",
        short_name: "Tsunagu",
        description: "Plan trips by bus, rail, walking and on-demand rides.",
        start_url: "/",
        scope: "/",
        display: "standalone",
        background_color: "#f6f7f9",
        theme_color: "#1f5f99",
        lang: "ja",
      },
      pwaAssets: {
        image: "public/icon.svg",
        // The maskable icon's safe-zone padding in the theme's blue, not sharp's default
        // white: a launcher's round mask then shows a blue disc, not a white ring.
        preset: {
          ...minimal2023Preset,
          maskable: { ...minimal2023Preset.maskable, resizeOptions: { background: "#1f5f99" } },
          apple: { ...minimal2023Preset.apple, resizeOptions: { background: "#1f5f99" } },
        },
        overrideManifestIcons: true,
        // index.html links its icons itself (the SVG); the generated PNGs go to the manifest.
        includeHtmlHeadLinks: false,
        injectThemeColor: false,
      },
      workbox: {
        // The manifest is added by the plugin itself (listed twice, its two revisions would
        // make the precache fail to install).
        globPatterns: ["**/*.{js,css,html,svg,png,ico}"],
        globIgnores: ["swagger-ui/**"],
        navigateFallback: "/index.html",
        navigateFallbackDenylist: [/^\/api\//, /^\/(healthz|readyz|\.well-known|swagger-ui)/],
        clientsClaim: true,
        skipWaiting: true,
        cleanupOutdatedCaches: true,
        runtimeCaching: [],
      },
    }),
    manifestOnResidentPageOnly(),
  ],
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
        planning: resolve(import.meta.dirname, "planning.html"),
      },
    },
  },
  server: { proxy: { "/api": "http://127.0.0.1:8000", "/.well-known": "http://127.0.0.1:8000" } },
});
