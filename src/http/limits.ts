// The limits every HTTP listener of a server process enforces against clients that send too
// much or too slowly: the size of the request line and headers, the URL's length, how long
// the headers and the whole request may take, how long an idle keep-alive connection stays
// open, how many connections a listener holds, and how many pipelined requests one connection
// may have in flight. The body's bound is the listener's own (--max-value-bytes and the
// like). `oncekv db`, `oncekv cache` and `oncekv admin` take the same flags for these.

/** HttpLimits bound what one listener accepts. */
export interface HttpLimits {
  /** maxHeaderBytes bounds the request line and headers together (over it: 431). */
  readonly maxHeaderBytes: number
  /** maxUrlBytes bounds the request target (over it: 414). */
  readonly maxUrlBytes: number
  /** headersTimeoutMs bounds the time from a request's first byte to its last header (over
   * it: 408 and close): a client that trickles its headers (slowloris) is cut off. */
  readonly headersTimeoutMs: number
  /** requestTimeoutMs bounds the time to receive a whole request, body included. */
  readonly requestTimeoutMs: number
  /** keepAliveTimeoutMs is how long an idle keep-alive connection is kept. */
  readonly keepAliveTimeoutMs: number
  /** maxConnections bounds the open connections of the listener: the first request on a
   * connection over it gets a 503 and the connection is closed. */
  readonly maxConnections: number
  /** maxInFlightPerConnection bounds the pipelined requests one connection has unanswered:
   * the request over it gets a 429 and the connection is closed. */
  readonly maxInFlightPerConnection: number
  /** maxWsMessageBytes bounds a WebSocket message from a client (clients only listen;
   * over it: close code 1009). */
  readonly maxWsMessageBytes: number
}

/** HTTP_LIMITS_DEFAULT are the limits of a listener without flags. */
export const HTTP_LIMITS_DEFAULT: HttpLimits = {
  maxHeaderBytes: 16 * 1024,
  // Keys are up to 1024 bytes, 3 times that percent-encoded, plus the path around them.
  maxUrlBytes: 8 * 1024,
  headersTimeoutMs: 10_000,
  // A 16 MiB value at a slow 1 MB/s takes 16 s; a minute leaves room for worse.
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 30_000,
  maxConnections: 4096,
  maxInFlightPerConnection: 16,
  maxWsMessageBytes: 4096,
}

/** LimitFlags are the limit flags as the CLI parses them (each optional). */
export interface LimitFlags {
  maxHeaderBytes?: number
  maxUrlBytes?: number
  headersTimeoutMs?: number
  requestTimeoutMs?: number
  keepAliveTimeoutMs?: number
  maxConnections?: number
  maxInFlightPerConnection?: number
  maxWsMessageBytes?: number
}

/** LIMIT_FLAGS describe each limit's flag: its name, help, and the smallest value it takes. */
export const LIMIT_FLAGS: ReadonlyArray<{
  readonly key: keyof HttpLimits
  readonly flag: string
  readonly help: string
  readonly min: number
}> = [
  {
    key: 'maxHeaderBytes',
    flag: '--max-header-bytes',
    help: 'largest request line + headers (bytes; over it: 431)',
    min: 1024,
  },
  {
    key: 'maxUrlBytes',
    flag: '--max-url-bytes',
    help: 'longest request URL (bytes; over it: 414)',
    min: 3200,
  },
  {
    key: 'headersTimeoutMs',
    flag: '--headers-timeout-ms',
    help: "time a request's headers may take to arrive (over it: 408, close)",
    min: 100,
  },
  {
    key: 'requestTimeoutMs',
    flag: '--request-timeout-ms',
    help: 'time a whole request, body included, may take to arrive (over it: 408, close)',
    min: 100,
  },
  {
    key: 'keepAliveTimeoutMs',
    flag: '--keep-alive-timeout-ms',
    help: 'time an idle keep-alive connection is kept open',
    min: 100,
  },
  {
    key: 'maxConnections',
    flag: '--max-connections',
    help: 'open connections per listener (over it: 503, close)',
    min: 1,
  },
  {
    key: 'maxInFlightPerConnection',
    flag: '--max-in-flight-per-connection',
    help: 'unanswered pipelined requests per connection (over it: 429, close)',
    min: 1,
  },
  {
    key: 'maxWsMessageBytes',
    flag: '--max-ws-message-bytes',
    help: 'largest WebSocket message a client may send (bytes; over it: close 1009)',
    min: 16,
  },
]

/** httpLimits fills in the defaults of what is not given. */
export function httpLimits(given: Partial<HttpLimits> | undefined): HttpLimits {
  const out: Record<string, number> = { ...HTTP_LIMITS_DEFAULT }
  for (const [k, v] of Object.entries(given ?? {})) if (typeof v === 'number') out[k] = v
  return out as unknown as HttpLimits
}
