// The gRPC load engine (crabcache.v1.Cache), on the completion-queue async API so that one or
// two threads drive every stream and do the client's I/O (no thread per stream).
//
// BatchExecute: `streams` bidi streams, each with one BatchRequest of `pipeline` commands in
// flight (write and read posted together), over min(connections, streams) channels with one TCP
// connection each. Unary: `streams` Get/Set calls in flight. Every Result is checked with the
// same CheckReply as the byte-stream protocols; the request messages are reused from batch to
// batch (a slot switching between Get and Set swaps in a spare sub-message), so the client
// allocates little beyond what gRPC itself does per message.
//
// The prefill SETs every key with BatchExecute batches of up to 1,000 commands on one stream.
#ifndef CRABCACHE_BENCH_GRPC_LOAD_H_
#define CRABCACHE_BENCH_GRPC_LOAD_H_

#include "absl/status/statusor.h"
#include "bench/keyspace.h"
#include "bench/options.h"

namespace crabcache::bench {

// Fails with kUnavailable when the server cannot be reached within 10 s, and with kDataLoss
// naming the first wrong result, a failed stream or call, or a stall.
absl::StatusOr<LoadResult> RunGrpcLoad(const KeySpace& keys, const LoadOptions& options);

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_GRPC_LOAD_H_
