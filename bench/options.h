// What one bench run does (LoadOptions) and what it measured (LoadResult), shared by the
// byte-stream engine (stream_load.h) and the gRPC engine (grpc_load.h).
#ifndef CRABCACHE_BENCH_OPTIONS_H_
#define CRABCACHE_BENCH_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "bench/histogram.h"

namespace crabcache::bench {

enum class ProtocolKind { kBinary, kResp, kGrpc };

struct LoadOptions {
  ProtocolKind protocol = ProtocolKind::kBinary;
  std::string host = "127.0.0.1";
  int port = 0;
  // Byte-stream protocols: TCP connections. gRPC: channels (each its own TCP connection), at most
  // one per stream.
  int connections = 50;
  // Byte-stream protocols: requests written together per connection, all answered before the
  // next batch (closed loop, like redis-benchmark -P). gRPC: commands per BatchRequest.
  int pipeline = 1;
  int streams = 8;         // gRPC: BatchExecute streams (or, with unary, calls in flight).
  bool unary = false;      // gRPC: unary Get/Set calls instead of BatchExecute.
  int threads = 1;         // Load-generator threads (epoll loops or completion-queue pollers).
  double get_ratio = 0.9;  // The rest are SETs.
  uint64_t keys = 100'000;
  size_t key_size = 16;
  size_t value_size = 64;
  double duration_s = 10;  // Measured time, when requests == 0.
  uint64_t requests = 0;   // Measured requests instead of a duration.
  double warmup_s = 1;     // Load before measuring, not counted.
  bool prefill = true;     // SET every key once before the load.
  bool load_only = false;  // Prefill, then stop (the memory benchmark).
  uint64_t seed = 1;

  // Called on the controlling thread about once a second while measuring.
  std::function<void(uint64_t ops, double seconds)> progress;
  // Called on the controlling thread right when measurement starts and ends (e.g. to read the
  // server's CPU time), so the measured window and the CPU window are the same.
  std::function<void()> on_measure_start;
  std::function<void()> on_measure_end;
};

struct LoadResult {
  uint64_t ops = 0;  // Measured requests (commands, for gRPC batches).
  uint64_t gets = 0;
  uint64_t get_hits = 0;
  uint64_t verified = 0;  // Every reply checked, prefill and warm-up included.
  double seconds = 0;     // Measured wall time.
  double prefill_seconds = 0;
  LatencyHistogram latency_ns;  // Per request: its batch's write to its reply's arrival.

  void Merge(const LoadResult& other) {
    ops += other.ops;
    gets += other.gets;
    get_hits += other.get_hits;
    verified += other.verified;
    latency_ns.Merge(other.latency_ns);
  }
};

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_OPTIONS_H_
