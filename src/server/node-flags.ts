/**
 * Node (V8) flags for the processes that run bookies: `logctl daemon` and `logctl standalone`. They can only
 * be given on node's command line (V8 aborts when --single-threaded-gc is set at run time, and NODE_OPTIONS
 * does not accept it), so they are in the one place each launcher reads: bin/run.js's shebang (a test checks
 * that it matches), the systemd unit's ExecStart, and the tests' and benchmarks' daemon launchers.
 *
 * --single-threaded-gc: V8's parallel and concurrent GC helper threads (4 per process) buy little for a
 * bookie, whose JS heap stays small (the index, the write cache and the journal buffers are typed arrays and
 * Buffers outside it), and on a machine whose cores are busy with the bookie's own journal thread, its peers
 * and clients, they cost more than they save. Measured on the project's 2-core machine with
 * benchmarks/cluster.ts (--bookie-node-args=--single-threaded-gc against none, paired runs): one bookie
 * +4-17 % entries/s and p99 1.4-3.4 ms lower; three bookies +8-23 % (docs/BENCHMARKS.md).
 *
 * --initial-old-space-size=64: a bookie's JS heap holds ~17 MB of live objects, and at that size V8 keeps
 * the old generation's limit so close above it that a bookie taking ~40,000 adds/s ran a full mark-compact
 * in place of most scavenges: --trace-gc of the three bookies of benchmarks/log.ts's tail step (--bookie-log
 * keeps their output; commands in docs/BENCHMARKS.md) counted 38-55 each in one run, with a median of ~21 ms
 * of incremental marking on the main thread each; starting the old generation at 64 MB, 5-8. Paired tail
 * runs: the three bookies' CPU 116-121 % -> 100-109 % of a core. It is a starting size, not a cap (the heap
 * still grows as needed), and costs at most ~50 MB of resident memory per bookie.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--single-threaded-gc', '--initial-old-space-size=64']

/**
 * What the README advises for an application that reads or writes tens of thousands of entries a second
 * through the library (node's command line or NODE_OPTIONS; a library cannot set it once V8 is running): the
 * same old-generation start, for the same reason. benchmarks/log.ts's follower at 40,000 entries/s ran 81 full
 * mark-compacts in its 9 s without it (a ~11 MB heap), 12 with it; its CPU 33 % -> 21 % of a core
 * (`node --trace-gc dist/benchmarks/log.js --rounds 0 --rate 40000 --follower-node-args=...`, docs/BENCHMARKS.md).
 * benchmarks/log.ts runs its follower process with it (printed in its header; --follower-node-args changes it).
 */
export const APP_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64']
