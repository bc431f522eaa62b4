// The web app's build: served by the service at /app, written into the Python package
// (cityexchange/static/app), which ships it; `npm run build` here, then commit the result.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/app/",
  build: {
    outDir: "../cityexchange/static/app",
    emptyOutDir: true,
    assetsInlineLimit: 0, // the page's policy allows scripts and styles from files only
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
});
