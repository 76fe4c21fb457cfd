// Lint rules for oncekv. Beyond the recommended sets, the Raft core is held to its
// contract here: no I/O, no timers, no wall clock and no global randomness under src/raft.
import js from '@eslint/js'
import pluginVue from 'eslint-plugin-vue'
import tseslint from 'typescript-eslint'

const nondeterminism = [
  { name: 'Date', message: 'The Raft core has no wall clock: time is a tick count.' },
  { name: 'setTimeout', message: 'The Raft core has no timers: the host calls tick().' },
  { name: 'setInterval', message: 'The Raft core has no timers: the host calls tick().' },
  { name: 'setImmediate', message: 'The Raft core has no timers: the host calls tick().' },
  { name: 'performance', message: 'The Raft core has no wall clock.' },
  { name: 'process', message: 'The Raft core does no I/O.' },
  { name: 'queueMicrotask', message: 'The Raft core schedules nothing: the host drives it.' },
  { name: 'crypto', message: 'Use the injected Rng.' },
  { name: 'globalThis', message: 'The Raft core reaches no globals.' },
]

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', 'build/', 'data/', 'web/dist/', 'web/src/components.d.ts'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // The dashboard's single-file components: Vue's essential rules (no layout rules: Prettier
  // formats), with TypeScript in <script setup lang="ts">.
  ...pluginVue.configs['flat/essential'],
  {
    files: ['web/**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser } },
    // vue-tsc checks names, as tsc does for .ts files.
    rules: { 'no-undef': 'off' },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['src/raft/**/*.ts', 'src/base/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-globals': ['error', ...nondeterminism],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'net', 'http', 'timers', 'crypto'],
              message: 'The Raft core does no I/O.',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Use the injected Rng.' },
      ],
    },
  },
  {
    files: ['src/raft/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'net', 'http', 'timers', 'crypto'],
              message: 'The Raft core does no I/O.',
            },
            {
              group: ['../*', '!../base', '!../base/index.ts'],
              message: 'src/raft imports only src/base.',
            },
          ],
        },
      ],
    },
  },
)
