"""The pin follower: keeps every CID the contracts reference pinned on IPFS nodes and pinning services, as each
task's on-chain retention policy says."""
