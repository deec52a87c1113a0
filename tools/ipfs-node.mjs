#!/usr/bin/env node
// A real js-ipfs node serving the Kubo RPC API on loopback, for tests, CI and benchmarks.
//
//   node tools/ipfs-node.mjs --repo DIR --api-port 5001 --swarm-port 4001 [--peer MULTIADDR ...]
//
// Binds only 127.0.0.1, has no bootstrap or public peers (no MDNS, no preload, no delegates), and prints
// one line `IPFS_NODE_READY {"api": ..., "peerId": ..., "swarm": [...]}` on stdout once the API answers.
// --peer dials the given multiaddr(s) after start (e.g. another local node's swarm address + /p2p/ID).
// SIGTERM/SIGINT stop the node and release the repo lock.
import { create } from 'ipfs-core'
import { HttpApi } from 'ipfs-http-server'
import { multiaddr } from '@multiformats/multiaddr'

function parseArgs (argv) {
  const args = { repo: null, apiPort: 5001, swarmPort: 4001, peers: [] }
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]
    const value = argv[i + 1]
    if (value === undefined) throw new Error(`missing value for ${key}`)
    if (key === '--repo') args.repo = value
    else if (key === '--api-port') args.apiPort = Number(value)
    else if (key === '--swarm-port') args.swarmPort = Number(value)
    else if (key === '--peer') args.peers.push(value)
    else throw new Error(`unknown option ${key}`)
    i++
  }
  if (!args.repo) throw new Error('--repo DIR is required')
  for (const port of [args.apiPort, args.swarmPort]) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${port}`)
  }
  return args
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  const ipfs = await create({
    repo: args.repo,
    repoAutoMigrate: true,
    preload: { enabled: false },
    offline: false,
    silent: true,
    start: true,
    config: {
      Addresses: {
        API: `/ip4/127.0.0.1/tcp/${args.apiPort}`,
        Gateway: '',
        Swarm: [`/ip4/127.0.0.1/tcp/${args.swarmPort}`],
        Delegates: []
      },
      Bootstrap: [],
      Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } }
    }
  })
  // A repo made by an earlier run keeps its own config: force loopback-only settings every time.
  await ipfs.config.set('Bootstrap', [])
  const api = new HttpApi(ipfs)
  await api.start()
  const id = await ipfs.id()
  for (const peer of args.peers) {
    await ipfs.swarm.connect(multiaddr(peer))
  }
  const apiAddr = api._apiServers[0].info
  const ready = {
    api: `http://127.0.0.1:${apiAddr.port}`,
    peerId: id.id.toString(),
    swarm: id.addresses.map((a) => a.toString())
  }
  process.stdout.write(`IPFS_NODE_READY ${JSON.stringify(ready)}\n`)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    try {
      await api.stop()
      await ipfs.stop()
    } finally {
      process.exit(0)
    }
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err) => {
  process.stderr.write(`ipfs-node: ${err.stack || err}\n`)
  process.exit(1)
})
