// The one command executor both front ends feed.
#ifndef CRABCACHE_CORE_EXECUTOR_H_
#define CRABCACHE_CORE_EXECUTOR_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "core/command.h"
#include "core/metrics.h"
#include "core/store.h"

namespace crabcache::core {

struct ExecutorOptions {
  // Commands whose key or value exceed these get a kError/kInvalidArgument result. Front ends
  // also check them before allocating (the fast path parser, the gRPC message limit); this is
  // the single place that guarantees it for every front end.
  size_t max_key_bytes = 64 * 1024;
  size_t max_value_bytes = 1024 * 1024;
};

// What a handler in the command table sees.
struct ExecContext {
  Store& store;
  const ExecutorOptions& options;
  Millis now;
};

// Executes batches of commands against a Store, delivering results in request order.
//
// A batch runs in order: a command sees the effects of every earlier command of the same batch.
// The clock is read once per batch, so all TTL arithmetic in a batch uses one instant.
//
// Thread-safety: Execute may be called concurrently from any number of threads; it holds at most
// one shard lock at a time and never across a call to anything but the sink's OnResult.
// Ownership: `store` and `metrics` are not owned and must outlive the executor; `metrics` may be
// null (metrics off).
class Executor {
 public:
  Executor(Store* store, MetricsSink* metrics, const ExecutorOptions& options = {});
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs `batch` in order and returns how many commands ran: batch.size(), unless the sink
  // requested a stop (ResultSink::RequestStop), then the commands from the returned count on did
  // not run (no effect, no result, not counted in metrics). At least one command runs when the
  // batch is not empty.
  size_t Execute(Frontend frontend, absl::Span<const Command> batch, ResultSink& sink) const;

  Store& store() const { return *store_; }
  const ExecutorOptions& options() const { return options_; }

 private:
  Store* const store_;
  MetricsSink* const metrics_;
  const ExecutorOptions options_;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_EXECUTOR_H_
