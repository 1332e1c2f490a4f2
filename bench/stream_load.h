// The closed-loop load engine for byte-stream protocols (binary fast path, RESP): every
// connection writes `pipeline` requests in one write, waits for all their replies, verifies each
// one, and starts over. Connections are spread over threads, each with its own epoll set.
#ifndef CRABCACHE_BENCH_STREAM_LOAD_H_
#define CRABCACHE_BENCH_STREAM_LOAD_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "bench/histogram.h"
#include "bench/protocol.h"

namespace crabcache::bench {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 50;
  int pipeline = 1;         // Requests in flight per connection.
  double get_ratio = 0.9;   // The rest are SETs.
  uint64_t keys = 100'000;  // Key space; every key is prefilled.
  int key_size = 16;
  int value_size = 64;
  double duration_s = 10;  // Measured time (ignored when requests > 0).
  uint64_t requests = 0;   // Stop after this many measured requests instead.
  double warmup_s = 1;
  int threads = 1;
  uint64_t seed = 1;
  bool prefill = true;
  // Called about once a second during the run with (measured ops so far, elapsed seconds).
  std::function<void(uint64_t, double)> progress;
  // Called by the controlling thread right when measurement starts and ends (e.g. to read the
  // server's CPU time).
  std::function<void()> on_measure_start;
  std::function<void()> on_measure_end;
};

struct LoadResult {
  uint64_t ops = 0;
  uint64_t gets = 0;
  uint64_t get_hits = 0;
  double seconds = 0;
  LatencyHistogram latency_ns;
};

// Fixed-width key and deterministic value for key index i, shared by prefill and verification.
std::string KeyFor(uint64_t i, int key_size);
std::string ValueFor(uint64_t i, int value_size);

// Fails (with the first wrong reply, or a connection error) instead of reporting numbers from a
// run whose replies were not what the protocol promises.
absl::StatusOr<LoadResult> RunStreamLoad(const Protocol& protocol, const LoadOptions& options);

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_STREAM_LOAD_H_
