// The peer transport's public surface: the Transport contract, its TCP implementation, and the
// wire format's errors and bounds (for configuration checks and tests elsewhere).
export type {
  IncomingSnapshot,
  KvPair,
  SnapshotSource,
  Transport,
  TransportHandlers,
  TransportStats,
} from './transport.ts'
export { TcpTransport, INBOUND_CONNECTIONS_MAX, type TcpTransportOptions } from './tcp-transport.ts'
export type { TransportLogger } from './peer-link.ts'
export { SnapshotTransferError } from './incoming-snapshot.ts'
export {
  FrameError,
  decodeHello,
  PROTOCOL_VERSION,
  FRAME_BYTES_MAX_DEFAULT,
  ID_LENGTH_MAX,
  CTX_LENGTH_MAX,
  KEY_BYTES_MAX,
} from './codec.ts'
export { parseHostPort, formatHostPort, type HostPort } from './host-port.ts'
