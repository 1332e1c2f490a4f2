// The closed-loop load engine for byte-stream protocols (binary fast path, RESP).
//
// Each connection writes `pipeline` requests with one write, reads until all their replies are
// in, checks every reply, and starts the next batch (like redis-benchmark -P). Connections are
// spread over `threads` event loops, each with its own epoll set and non-blocking sockets. After
// the first batches the engine allocates nothing per request: keys and values are generated into
// reused buffers and replies are parsed in place.
//
// The prefill SETs every key once over the same connections, in batches of up to 512 requests
// per connection, and checks every OK.
#ifndef CRABCACHE_BENCH_STREAM_LOAD_H_
#define CRABCACHE_BENCH_STREAM_LOAD_H_

#include <string>

#include "absl/status/statusor.h"
#include "bench/keyspace.h"
#include "bench/options.h"
#include "bench/protocol.h"

namespace crabcache::bench {

// Runs the load `options` describes over `keys`. Fails with kUnavailable when the server cannot
// be reached, and with kDataLoss naming the first wrong reply, a closed connection or a stall:
// it never reports figures from a run whose replies were not all verified.
absl::StatusOr<LoadResult> RunStreamLoad(const Protocol& protocol, const KeySpace& keys,
                                         const LoadOptions& options);

// A connected, non-blocking TCP socket with TCP_NODELAY, or kUnavailable.
absl::StatusOr<int> ConnectTcp(const std::string& host, int port);

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_STREAM_LOAD_H_
