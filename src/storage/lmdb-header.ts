// A check of an LMDB data file's header, done in plain file reads before LMDB maps the file.
// LMDB trusts its file: measured with lmdb 3.5, opening a file whose header is zeroed or that
// is not an LMDB file at all kills the process with SIGSEGV, and reading a truncated file kills
// it with SIGBUS, so neither can be caught as an error. This check turns those cases into a
// problem description the store reports as StoreCorruptError. It does not (cannot, cheaply)
// vouch for the B-tree pages themselves: LMDB keeps no page checksums, and a garbled interior
// page can still crash the process; the log's own CRCs catch garbled records.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'

// Offsets in a meta page of a 64-bit build (mdb.c: MDB_page_header is 24 bytes, then MDB_meta).
const PAGE_FLAGS_AT = 18 // u16 mp_flags
const P_META = 0x08
const MAGIC_AT = 24 // u32 mm_magic
const MDB_MAGIC = 0xbeefc0de
const VERSION_AT = 28 // u32 mm_version, low 16 bits
const MDB_DATA_VERSION = 2
const PAGE_SIZE_AT = 48 // u32 mm_dbs[FREE_DBI].md_pad holds the page size
const FREE_ROOT_AT = 88 // u64 mm_dbs[FREE_DBI].md_root
const MAIN_ROOT_AT = 136 // u64 mm_dbs[MAIN_DBI].md_root
const TXNID_AT = 152 // u64 mm_txnid
const META_BYTES = 160
const P_INVALID = 0xffff_ffff_ffff_ffffn

interface MetaPage {
  readonly pageSize: number
  readonly freeRoot: bigint
  readonly mainRoot: bigint
  readonly txnId: bigint
}

/**
 * checkLmdbDataFile inspects path (an LMDB data.mdb) and returns what is wrong with it, or
 * undefined when it looks usable or does not exist yet (empty). It checks both meta pages
 * (flags, magic, version, page size) and that the file still holds the root pages both
 * metas point to: a file cut short loses its newest pages first, and those hold the roots.
 */
export function checkLmdbDataFile(path: string): string | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
  try {
    const size = fstatSync(fd).size
    if (size === 0) return undefined
    const first = readMeta(fd, 0, size)
    if (typeof first === 'string') return `data file ${path}: first meta page ${first}`
    const second = readMeta(fd, first.pageSize, size)
    if (typeof second === 'string') return `data file ${path}: second meta page ${second}`
    const pages = BigInt(Math.floor(size / first.pageSize))
    for (const meta of [first, second]) {
      for (const root of [meta.freeRoot, meta.mainRoot]) {
        if (root !== P_INVALID && root >= pages) {
          return (
            `data file ${path} is ${size} bytes (${pages} pages) but transaction ` +
            `${meta.txnId} has a root at page ${root}: the file was truncated`
          )
        }
      }
    }
    return undefined
  } finally {
    closeSync(fd)
  }
}

function readMeta(fd: number, offset: number, size: number): MetaPage | string {
  if (size < offset + META_BYTES) return `is missing (file is ${size} bytes)`
  const buf = new Uint8Array(META_BYTES)
  const n = readSync(fd, buf, 0, META_BYTES, offset)
  if (n !== META_BYTES) return `could not be read`
  const view = new DataView(buf.buffer)
  if ((view.getUint16(PAGE_FLAGS_AT, true) & P_META) === 0) return 'is not a meta page'
  if (view.getUint32(MAGIC_AT, true) !== MDB_MAGIC) return 'lacks the LMDB magic number'
  const version = view.getUint32(VERSION_AT, true) & 0xffff
  if (version !== MDB_DATA_VERSION) return `has format version ${version}, not 2`
  const pageSize = view.getUint32(PAGE_SIZE_AT, true)
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    return `has a bad page size ${pageSize}`
  }
  return {
    pageSize,
    freeRoot: view.getBigUint64(FREE_ROOT_AT, true),
    mainRoot: view.getBigUint64(MAIN_ROOT_AT, true),
    txnId: view.getBigUint64(TXNID_AT, true),
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOENT'
}
