// The dashboard's entry point. Element Plus components and their styles are imported where
// templates use them (unplugin-vue-components); the dark theme's variables apply under
// html.dark.
import { createApp } from 'vue'
import 'element-plus/theme-chalk/dark/css-vars.css'
import './app.css'
import App from './App.vue'

createApp(App).mount('#app')
