// Dials one libp2p node with js-libp2p (an implementation independent of
// rust-libp2p, which mailnode uses), waits for the remote's Identify, pings
// it, and prints what it learnt as one JSON object on stdout.
//
// Usage: node dial.mjs MULTIADDR [PINGS]
//   MULTIADDR  /ip4/127.0.0.1/tcp/PORT/p2p/PEERID           (TCP + Noise + Yamux)
//           or /ip4/127.0.0.1/udp/PORT/quic-v1/p2p/PEERID   (QUIC v1, TLS 1.3)
//   PINGS      how many pings to send (default 3)
//
// Exit status: 0 when the dial, Identify and every ping succeeded; 1 on any
// failure (reason on stderr); 2 on bad usage. The whole run is bounded by
// DIAL_TIMEOUT_MS (default 30000). tests/interop.rs drives this script and
// asserts on its output; it does not judge the remote itself.

import './node20.mjs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { quic } from '@chainsafe/libp2p-quic'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'

const USAGE = 'usage: node dial.mjs MULTIADDR [PINGS]'

function fail (message, code = 1) {
  process.stderr.write(`dial.mjs: ${message}\n`)
  process.exit(code)
}

const [target, pingsArg = '3'] = process.argv.slice(2)
if (target === undefined || process.argv.length > 4) {
  fail(USAGE, 2)
}
const pings = Number.parseInt(pingsArg, 10)
if (!Number.isInteger(pings) || pings < 1 || pings > 100) {
  fail(`PINGS must be a number from 1 to 100, not ${JSON.stringify(pingsArg)}`, 2)
}
const timeoutMs = Number.parseInt(process.env.DIAL_TIMEOUT_MS ?? '30000', 10)
if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
  fail('DIAL_TIMEOUT_MS must be a positive number of milliseconds', 2)
}

let addr
try {
  addr = multiaddr(target)
} catch (err) {
  fail(`not a multiaddr: ${JSON.stringify(target)} (${err.message})`, 2)
}
const expectedPeer = addr.getPeerId()
if (expectedPeer === null) {
  fail(`the multiaddr must end in /p2p/PEERID, so that Noise/TLS checks whom we reach: ${target}`, 2)
}

// One deadline for everything: the dial, Identify, and the pings. A timer
// (not an await on the signal) so that a hung native transport cannot keep
// the process alive past it.
const deadline = AbortSignal.timeout(timeoutMs)
const watchdog = setTimeout(() => {
  fail(`gave up after ${timeoutMs} ms (dial, identify and ${pings} pings of ${target})`)
}, timeoutMs + 1000)
watchdog.unref()

const node = await createLibp2p({
  // Dial only: no listening socket, so nothing but the target is touched.
  addresses: { listen: [] },
  transports: [tcp(), quic()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping()
  }
})

// Identify runs by itself on every new connection; subscribe before
// dialling so that its result cannot be missed.
const identified = new Promise((resolve, reject) => {
  const onIdentify = (event) => {
    if (event.detail.peerId.toString() === expectedPeer) {
      node.removeEventListener('peer:identify', onIdentify)
      resolve(event.detail)
    }
  }
  node.addEventListener('peer:identify', onIdentify)
  deadline.addEventListener('abort', () => {
    reject(new Error(`no Identify from ${expectedPeer} within ${timeoutMs} ms`))
  }, { once: true })
})
// Awaited below; until then a rejection must not count as unhandled.
identified.catch(() => {})

let exitCode = 0
try {
  const started = performance.now()
  const connection = await node.dial(addr, { signal: deadline })
  const connectMs = performance.now() - started
  // js-libp2p 2.x does not hand the PeerId of the address to Noise on
  // outbound dials, so it would accept whoever answers there. The remote
  // PeerId of the connection is the one the handshake proved; compare it.
  const reached = connection.remotePeer.toString()
  if (reached !== expectedPeer) {
    throw new Error(`the node at this address is ${reached}, not the expected ${expectedPeer}`)
  }
  const info = await identified
  const rtts = []
  for (let i = 0; i < pings; i++) {
    rtts.push(await node.services.ping.ping(addr, { signal: deadline }))
  }
  const report = {
    local_peer_id: node.peerId.toString(),
    peer_id: info.peerId.toString(),
    remote_addr: connection.remoteAddr.toString(),
    multiplexer: connection.multiplexer ?? null,
    encryption: connection.encryption ?? null,
    connect_ms: Math.round(connectMs * 10) / 10,
    agent_version: info.agentVersion ?? null,
    protocol_version: info.protocolVersion ?? null,
    protocols: info.protocols,
    listen_addrs: info.listenAddrs.map((a) => a.toString()),
    pings_ms: rtts
  }
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
} catch (err) {
  process.stderr.write(`dial.mjs: ${target}: ${err.name}: ${err.message}\n`)
  exitCode = 1
} finally {
  await node.stop().catch(() => {})
}
process.exit(exitCode)
