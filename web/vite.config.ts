// Vite builds the dashboard (web/) into web/dist, which the admin serves at `/`. Element Plus
// components are imported on demand (with their styles) by unplugin-vue-components, so the
// bundle holds only what the page uses. `vite web` (the dev server) and `vite preview web`
// pass the admin's routes through to ONCEKV_ADMIN (default: the admin of `oncekv dev`).
import { fileURLToPath } from 'node:url'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import { defineConfig, type ProxyOptions } from 'vite'

const admin = process.env.ONCEKV_ADMIN ?? 'http://127.0.0.1:5546'

// The admin takes WebSockets and API calls from its own pages only (the Host it is reached
// by and the page's Origin must agree): the proxy presents every request as coming from the
// admin's own page (changeOrigin sets the Host; the Origin, when the browser sent one, is
// set here), so the dev server's page works like the built one. Vite's own checks (its
// allowed hosts and CORS) still decide which pages reach the dev server.
const toAdmin: ProxyOptions = {
  target: admin,
  changeOrigin: true,
  ws: true,
  configure: (proxy) => {
    proxy.on('proxyReq', (req) => {
      if (req.getHeader('origin') !== undefined) req.setHeader('origin', admin)
    })
    proxy.on('proxyReqWs', (req) => req.setHeader('origin', admin))
  },
}
const proxy = Object.fromEntries(
  ['/overview', '/history', '/api/', '/caches', '/dbs', '/ws/'].map((p) => [p, toAdmin]),
)

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  plugins: [
    vue(),
    Components({
      resolvers: [ElementPlusResolver({ importStyle: 'css' })],
      dts: fileURLToPath(new URL('./src/components.d.ts', import.meta.url)),
      dirs: [],
    }),
  ],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 600,
  },
  server: { proxy },
  preview: { proxy },
})
