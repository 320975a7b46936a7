#!/usr/bin/env -S node --single-threaded-gc --initial-old-space-size=64
// The flags are DAEMON_NODE_FLAGS (src/server/node-flags.ts), for the commands that run bookies; harmless for the others.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
