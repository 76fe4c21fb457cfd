// `oncekv admin` with no flags: the original's defaults (the admin on 127.0.0.1:5546,
// following the database through http://127.0.0.1:11000). Starting one on those ports is not
// possible in a test (they may be taken), so the parsed options are checked instead.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Command } from 'commander'
import { VALUE_BYTES_MAX_DEFAULT } from '../../protocol/index.ts'
import { adminOptions, registerAdmin, type AdminFlags } from './admin.ts'

function parse(args: string[]): AdminFlags {
  const program = new Command().exitOverride()
  registerAdmin(program)
  const admin = program.commands.find((c) => c.name() === 'admin')
  assert.ok(admin)
  admin
    .exitOverride()
    .configureOutput({ writeErr: () => {} })
    .parseOptions(args)
  return admin.opts<AdminFlags>()
}

describe('oncekv admin options', () => {
  it('default to 127.0.0.1:5546 and the database at http://127.0.0.1:11000', () => {
    assert.deepEqual(adminOptions(parse([])), {
      http: '127.0.0.1:5546',
      dbs: ['http://127.0.0.1:11000'],
      allowOrigins: undefined,
      heartbeatMs: 1_000,
      dropAfterMisses: 3,
      maxValueBytes: VALUE_BYTES_MAX_DEFAULT,
      logLevel: 'info',
      security: {},
      limits: {},
    })
  })

  it('take the flags given', () => {
    const o = adminOptions(
      parse([
        '--http',
        '0.0.0.0:6000',
        '--db',
        'http://10.0.0.1:11000',
        '--db',
        'http://10.0.0.2:11000',
        '--allow-origin',
        'https://ops.example.com',
        '--max-value-bytes',
        '4096',
        '--started-by',
        'dev',
        '--max-connections',
        '100',
        '--headers-timeout-ms',
        '2000',
      ]),
    )
    assert.equal(o.http, '0.0.0.0:6000')
    assert.deepEqual(o.dbs, ['http://10.0.0.1:11000', 'http://10.0.0.2:11000'])
    assert.deepEqual(o.allowOrigins, ['https://ops.example.com'])
    assert.equal(o.maxValueBytes, 4096)
    assert.equal(o.startedBy, 'dev')
    assert.deepEqual(o.limits, { maxConnections: 100, headersTimeoutMs: 2000 })
  })

  it('refuse a limit below its floor', () => {
    assert.throws(() => parse(['--max-connections', '0']), /at least 1/)
    assert.throws(() => parse(['--max-url-bytes', '100']), /at least 3200/)
  })

  it('refuse a wildcard origin', () => {
    assert.throws(() => parse(['--allow-origin', '*']), /no wildcard/)
  })
})
