#include "core/executor.h"

#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"

namespace crabcache::core {
namespace {

uint64_t MonotonicNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// The limit check shared by every front end; the message names the limit so users can act.
bool WithinLimits(const CommandSpec& spec, const Command& c, const ExecutorOptions& options,
                  ResultSink& sink) {
  const char* what = nullptr;
  size_t limit = 0;
  if ((spec.flags & kFlagHasKey) && c.key.size() > options.max_key_bytes) {
    what = "key";
    limit = options.max_key_bytes;
  } else if ((spec.flags & kFlagHasValue) && c.value.size() > options.max_value_bytes) {
    what = "value";
    limit = options.max_value_bytes;
  }
  if (what == nullptr) return true;
  const std::string message = absl::StrCat(what, " exceeds max_", what, "_bytes (", limit, ")");
  sink.OnResult(Result{ResultCode::kError, message, 0, absl::StatusCode::kInvalidArgument});
  return false;
}

}  // namespace

std::string_view FrontendName(Frontend frontend) {
  return frontend == Frontend::kGrpc ? "grpc" : "fastpath";
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kHit:
      return "hit";
    case Outcome::kMiss:
      return "miss";
    case Outcome::kError:
      return "error";
  }
  return "unknown";
}

Outcome OutcomeOf(ResultCode code) {
  switch (code) {
    case ResultCode::kHit:
      return Outcome::kHit;
    case ResultCode::kMiss:
    case ResultCode::kNotFound:
      return Outcome::kMiss;
    case ResultCode::kError:
      return Outcome::kError;
    default:
      return Outcome::kOk;
  }
}

Executor::Executor(Store* store, MetricsSink* metrics, const ExecutorOptions& options)
    : store_(store), metrics_(metrics), options_(options) {}

size_t Executor::Execute(Frontend frontend, absl::Span<const Command> batch,
                         ResultSink& sink) const {
  const uint64_t start_ns = metrics_ != nullptr ? MonotonicNanos() : 0;
  const ExecContext ctx{*store_, options_, store_->Now()};

  // Hash every key first, then keep the index slots of the next kPrefetchAhead keys on their way
  // into the cache while a command runs: a batch's index lookups then miss the cache together
  // rather than one after another (measured in docs/benchmarks.md). The window bounds what is in
  // flight, so a 10,000-command batch does not evict its own early lines. The vector is per
  // thread and keeps its capacity: no allocation per batch once warm.
  constexpr size_t kPrefetchAhead = 16;
  thread_local std::vector<uint64_t> hashes;
  hashes.resize(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const Command& c = batch[i];
    hashes[i] = (LookupCommand(c.id).flags & kFlagHasKey) != 0 ? store_->Hash(c.key) : 0;
  }
  const bool prefetch = batch.size() > 1;
  if (prefetch) {
    for (size_t i = 0; i < batch.size() && i < kPrefetchAhead; ++i) {
      if (hashes[i] != 0) store_->Prefetch(hashes[i]);
    }
  }

  BatchMetrics m;
  size_t ran = 0;
  while (ran < batch.size()) {
    const size_t i = ran++;
    if (prefetch && i + kPrefetchAhead < batch.size() && hashes[i + kPrefetchAhead] != 0) {
      store_->Prefetch(hashes[i + kPrefetchAhead]);
    }
    const Command& c = batch[i];
    const CommandSpec& spec = LookupCommand(c.id);
    const ResultCode code = WithinLimits(spec, c, options_, sink)
                                ? spec.handler(ctx, c, hashes[i], sink)
                                : ResultCode::kError;
    m.Add(c.id, OutcomeOf(code));
    if (sink.stop_requested()) break;
  }
  if (metrics_ == nullptr) return ran;
  m.frontend = frontend;
  m.commands = static_cast<uint32_t>(ran);
  m.latency_ns = MonotonicNanos() - start_ns;
  metrics_->RecordBatch(m);
  return ran;
}

}  // namespace crabcache::core
