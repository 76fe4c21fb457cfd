// Throwaway TLS material for tests, made with Debian's openssl: a CA, and one certificate it
// signs for 127.0.0.1 and localhost (server and client use both), written into a new temp
// directory. Every process of a test cluster can serve and verify with the same files.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** TestCerts are the PEM files' paths. */
export interface TestCerts {
  readonly dir: string
  readonly ca: string
  readonly caKey: string
  readonly cert: string
  readonly key: string
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** makeCerts creates a CA and a certificate for 127.0.0.1/localhost signed by it; name tells
 * one set from another (a second, untrusted CA for negative tests). */
export function makeCerts(name = 'oncekv-test'): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'oncekv-certs-'))
  const ext = join(dir, 'ext.cnf')
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '',
    ].join('\n'),
  )
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      `/CN=${name} CA`,
    ],
    dir,
  )
  openssl(
    ['req', ...ec, '-keyout', 'node.key', '-out', 'node.csr', '-subj', `/CN=${name} node`],
    dir,
  )
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'node.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'node.pem',
      '-days',
      '2',
      '-extfile',
      ext,
    ],
    dir,
  )
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key'),
    cert: join(dir, 'node.pem'),
    key: join(dir, 'node.key'),
  }
}
