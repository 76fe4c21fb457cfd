// The handshake that opens every transport connection. The caller (client) sends a hello: its
// cluster name, id and purpose. Without a cluster secret that is all, and frames of the
// purpose follow at once. With one, the hello carries a fresh random nonce and the connection
// carries nothing else until both ends proved they hold the secret, without sending it:
//
//   client -> server  hello      [.., clientNonce]
//   server -> client  challenge  [serverId, serverNonce, HMAC(secret, 'server' | subject)]
//   client -> server  proof      [HMAC(secret, 'client' | subject)]
//
// where subject = cluster name, client id, server id, purpose, both nonces and, over TLS, keying
// material exported from the TLS session (so a handshake cannot be relayed into another TLS
// session). Each MAC covers a nonce the verifier just drew, so a recorded handshake does not
// replay; each names its sender's role, so neither end answers anything the other end would
// accept as its own proof (a server's MAC never passes as a client's, and the reverse); the
// client checks the server before it sends its proof or a single message or snapshot byte, and
// the server reads nothing but the proof until it checked it. A secret on one side only is
// refused on both: a hello without a nonce by a member with a secret, a hello with one by a
// member without. Every refusal is a FrameError: the connection is dropped.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { NodeId } from '../raft/index.ts'
import type { Secret } from '../security/index.ts'
import {
  decodeChallenge,
  decodeHello,
  decodeProof,
  encodeChallenge,
  encodeHello,
  encodeProof,
  FrameError,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  type Hello,
  type Purpose,
} from './codec.ts'

/** Role is which end of a connection computes a MAC. */
export type Role = 'client' | 'server'

/** HandshakeSubject is what both MACs of a handshake cover. */
export interface HandshakeSubject {
  readonly clusterName: string
  readonly clientId: NodeId
  readonly serverId: NodeId
  readonly purpose: Purpose
  readonly clientNonce: Uint8Array
  readonly serverNonce: Uint8Array
  /** binding is TLS keying material of the connection, empty without TLS. */
  readonly binding: Uint8Array
}

const DOMAIN = 'oncekv raft handshake v1'

/** handshakeMac is HMAC-SHA256(secret, role | subject), every field length-prefixed. */
export function handshakeMac(secret: Secret, role: Role, s: HandshakeSubject): Buffer {
  const hmac = createHmac('sha256', secret.reveal())
  const parts = [
    DOMAIN,
    role,
    s.clusterName,
    s.clientId,
    s.serverId,
    s.purpose,
    s.clientNonce,
    s.serverNonce,
    s.binding,
  ]
  for (const part of parts) {
    const b = typeof part === 'string' ? Buffer.from(part) : part
    const length = Buffer.alloc(4)
    length.writeUInt32BE(b.byteLength)
    hmac.update(length)
    hmac.update(b)
  }
  return hmac.digest()
}

function macMatches(given: Uint8Array, want: Buffer): boolean {
  return given.byteLength === want.byteLength && timingSafeEqual(given, want)
}

/** channelBinding is keying material exported from the connection's TLS session (the same on
 * both ends), or nothing on a plain TCP connection. */
export function channelBinding(socket: Socket): Uint8Array {
  if (socket instanceof TLSSocket) {
    return socket.exportKeyingMaterial(32, 'EXPORTER-oncekv-raft-handshake', Buffer.alloc(0))
  }
  return new Uint8Array(0)
}

/** HandshakeParams are what both ends know of themselves. */
export interface HandshakeParams {
  readonly clusterName: string
  readonly id: NodeId
  readonly secret?: Secret
}

/** ClientHandshake runs the dialling end: hello() first, then onFrame() with each frame the
 * server sends until done. */
export class ClientHandshake {
  private readonly nonce: Buffer | undefined
  /** done is true once frames of the purpose may flow. */
  done = false

  constructor(
    private readonly params: HandshakeParams,
    /** peer is the id of the member we mean to reach; the server must prove it is. */
    private readonly peer: NodeId,
    private readonly purpose: Purpose,
    private readonly socket: Socket,
  ) {
    this.nonce = params.secret === undefined ? undefined : randomBytes(NONCE_BYTES)
  }

  /** hello is the first frame to write; without a secret the handshake is then done. */
  hello(): Buffer {
    const hello: Hello = {
      version: PROTOCOL_VERSION,
      clusterName: this.params.clusterName,
      id: this.params.id,
      purpose: this.purpose,
      ...(this.nonce === undefined ? {} : { nonce: this.nonce }),
    }
    if (this.nonce === undefined) this.done = true
    return encodeHello(hello)
  }

  /** onFrame checks the server's challenge and returns the proof to write; it throws a
   * FrameError if the server does not prove the secret. */
  onFrame(payload: Uint8Array): Buffer {
    const { secret } = this.params
    if (this.done || secret === undefined || this.nonce === undefined) {
      throw new FrameError('unexpected frame during the handshake')
    }
    const challenge = decodeChallenge(payload)
    if (challenge.id !== this.peer) {
      throw new FrameError(`the server is member ${JSON.stringify(challenge.id)}, not ${this.peer}`)
    }
    const subject: HandshakeSubject = {
      clusterName: this.params.clusterName,
      clientId: this.params.id,
      serverId: this.peer,
      purpose: this.purpose,
      clientNonce: this.nonce,
      serverNonce: challenge.nonce,
      binding: channelBinding(this.socket),
    }
    if (!macMatches(challenge.mac, handshakeMac(secret, 'server', subject))) {
      throw new FrameError('the server does not hold our cluster secret')
    }
    this.done = true
    return encodeProof(handshakeMac(secret, 'client', subject))
  }
}

/** ServerHandshake runs the accepting end: onFrame() with each frame until accepted. */
export class ServerHandshake {
  private subject: HandshakeSubject | undefined
  /** hello is the caller's hello, once read. */
  hello: Hello | undefined
  /** accepted is true once frames of the purpose may flow. */
  accepted = false

  constructor(
    private readonly params: HandshakeParams,
    private readonly socket: Socket,
  ) {}

  /** onFrame takes one frame before acceptance and returns the frame to write back, if any;
   * it throws a FrameError to refuse the caller. */
  onFrame(payload: Uint8Array): Buffer | undefined {
    const { secret } = this.params
    if (this.hello === undefined) {
      const hello = decodeHello(payload)
      if (hello.clusterName !== this.params.clusterName) {
        throw new FrameError(`hello from cluster ${JSON.stringify(hello.clusterName)}`)
      }
      if (hello.id === this.params.id) throw new FrameError('hello from our own id')
      this.hello = hello
      if (secret === undefined) {
        if (hello.nonce !== undefined) {
          throw new FrameError('the peer offers a cluster secret; this member has none')
        }
        this.accepted = true
        return undefined
      }
      if (hello.nonce === undefined) throw new FrameError('the peer offers no cluster secret')
      this.subject = {
        clusterName: this.params.clusterName,
        clientId: hello.id,
        serverId: this.params.id,
        purpose: hello.purpose,
        clientNonce: hello.nonce,
        serverNonce: randomBytes(NONCE_BYTES),
        binding: channelBinding(this.socket),
      }
      return encodeChallenge({
        id: this.params.id,
        nonce: this.subject.serverNonce,
        mac: handshakeMac(secret, 'server', this.subject),
      })
    }
    if (this.accepted || secret === undefined || this.subject === undefined) {
      throw new FrameError('unexpected frame during the handshake')
    }
    const mac = decodeProof(payload)
    if (!macMatches(mac, handshakeMac(secret, 'client', this.subject))) {
      throw new FrameError('wrong cluster secret')
    }
    this.accepted = true
    return undefined
  }
}
