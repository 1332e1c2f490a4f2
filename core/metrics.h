// The metrics seam at the executor boundary. Core knows nothing of Prometheus: the server plugs a
// MetricsSink in, and both front ends are counted by the same code, so their numbers always mean
// the same thing.
#ifndef CRABCACHE_CORE_METRICS_H_
#define CRABCACHE_CORE_METRICS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/command.h"

namespace crabcache::core {

enum class Frontend : uint8_t { kFastPath = 0, kGrpc = 1 };
inline constexpr size_t kNumFrontends = 2;
std::string_view FrontendName(Frontend frontend);  // "fastpath", "grpc"

// How a command ended, for metrics: kOk covers ok/pong/ttl/stats, kMiss covers miss/not_found.
enum class Outcome : uint8_t { kOk = 0, kHit = 1, kMiss = 2, kError = 3 };
inline constexpr size_t kNumOutcomes = 4;
std::string_view OutcomeName(Outcome outcome);  // "ok", "hit", "miss", "error"
Outcome OutcomeOf(ResultCode code);

// Counts for one executed batch, gathered without atomics by the executor.
struct BatchMetrics {
  Frontend frontend = Frontend::kFastPath;
  uint32_t commands = 0;
  uint64_t latency_ns = 0;  // Time spent inside Executor::Execute.
  std::array<std::array<uint32_t, kNumOutcomes>, kNumCommands> counts{};  // [command][outcome]
  // Bit (command * kNumOutcomes + outcome) is set for every non-zero count, so a sink visits
  // only the cells a batch touched (usually one or two) instead of all of them.
  uint32_t touched = 0;

  void Add(CommandId command, Outcome outcome, uint32_t n = 1) {
    const size_t c = static_cast<size_t>(command), o = static_cast<size_t>(outcome);
    counts[c][o] += n;
    touched |= uint32_t{1} << (c * kNumOutcomes + o);
  }
};
static_assert(kNumCommands * kNumOutcomes <= 32, "BatchMetrics::touched is a 32-bit mask");

// Receives one call per executed batch. Implementations must be thread-safe: batches run
// concurrently on every front end thread. Must not block or take long.
class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  virtual void RecordBatch(const BatchMetrics& batch) = 0;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_METRICS_H_
