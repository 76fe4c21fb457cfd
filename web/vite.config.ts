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

// The admin accepts WebSockets from its own origin only: present the upgrade as coming from it.
const toAdmin: ProxyOptions = {
  target: admin,
  changeOrigin: true,
  ws: true,
  configure: (proxy) => {
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
