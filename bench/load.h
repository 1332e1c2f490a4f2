// Dispatch from the bench's flags to the engine for each protocol.
#ifndef CRABCACHE_BENCH_LOAD_H_
#define CRABCACHE_BENCH_LOAD_H_

#include <string>

#include "absl/status/statusor.h"
#include "bench/stream_load.h"

namespace crabcache::bench {

struct BenchConfig {
  std::string protocol = "binary";  // binary | resp | grpc
  LoadOptions load;
  int streams = 8;     // gRPC: concurrent BatchExecute streams.
  bool unary = false;  // gRPC: unary Get/Set instead of BatchExecute.
};

absl::StatusOr<LoadResult> RunLoad(const BenchConfig& config);

// The gRPC engine (grpc_load.cc); RunLoad dispatches to it for --protocol grpc.
absl::StatusOr<LoadResult> RunGrpcLoad(const BenchConfig& config);

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_LOAD_H_
