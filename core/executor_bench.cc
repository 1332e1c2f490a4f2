// Micro-benchmark of Executor::Execute on get/set batches, with a sink that appends replies to a
// byte buffer the way a front end does; and the worst-case cost of one s3fifo write.
// Run: build/release/core/core_executor_bench
#include <cstdio>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/executor.h"
#include "core/log_shard.h"

namespace crabcache::core {
namespace {

constexpr int kKeys = 100'000;

class BufferSink : public ResultSink {
 public:
  void OnResult(const Result& r) override {
    out.push_back(static_cast<char>(r.code));
    out.append(r.value.data(), r.value.size());
  }
  std::string out;
};

struct Fixture {
  explicit Fixture(const StoreOptions& options = {}) : store(options), executor(&store, nullptr) {
    for (int i = 0; i < kKeys; ++i) keys.push_back("key:" + std::to_string(i));
    std::vector<Command> fill;
    for (const auto& k : keys) fill.push_back(Command::Set(k, value));
    BufferSink sink;
    executor.Execute(Frontend::kFastPath, fill, sink);
  }
  Store store;
  Executor executor;
  std::vector<std::string> keys;
  const std::string value = std::string(64, 'v');
};

Fixture& Shared() {
  static Fixture* f = new Fixture();
  return *f;
}

// The same keys under a limit that holds about half of them: misses, and SETs that evict.
Fixture& SharedEvicting() {
  static Fixture* f = new Fixture(StoreOptions{.max_memory_bytes = 4 << 20});
  return *f;
}

// Arg(0): commands per batch; Arg(1): percent GETs (the rest are SETs).
void RunBatches(Fixture& f, benchmark::State& state) {
  const int batch_size = static_cast<int>(state.range(0));
  const int get_percent = static_cast<int>(state.range(1));
  std::vector<Command> batch(batch_size);
  BufferSink sink;
  uint64_t i = static_cast<uint64_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    for (int c = 0; c < batch_size; ++c, ++i) {
      const std::string& key = f.keys[(i * 2654435761u) % kKeys];
      batch[c] =
          static_cast<int>(i % 100) < get_percent ? Command::Get(key) : Command::Set(key, f.value);
    }
    sink.out.clear();
    f.executor.Execute(Frontend::kFastPath, batch, sink);
    benchmark::DoNotOptimize(sink.out.data());
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
}

void BM_ExecuteBatch(benchmark::State& state) { RunBatches(Shared(), state); }
void BM_ExecuteBatchEvicting(benchmark::State& state) { RunBatches(SharedEvicting(), state); }

BENCHMARK(BM_ExecuteBatch)
    ->Args({1, 90})
    ->Args({16, 90})
    ->Args({64, 90})
    ->Args({64, 0})
    ->Args({64, 100})
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_ExecuteBatchEvicting)
    ->Args({64, 90})
    ->Args({64, 0})
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// One s3fifo write in the worst case: a 16 MiB shard (1024 segments of 16 KiB) of 16-byte keys
// with 10-byte values, every one read three times since its last drain, so each drain reinserts
// everything until the valve (LogShard::kMaxFruitlessDrainsPerWrite) forces an eviction. Each
// iteration re-heats the shard (untimed), then times the first new key that needs a segment.
void BM_S3FifoWorstCaseWrite(benchmark::State& state) {
  const KeyHasher hasher{1};
  LogShard shard(
      ShardOptions{.policy = EvictionPolicy::kS3Fifo, .budget_bytes = 16 << 20, .hasher = hasher});
  auto key = [](uint64_t i) {
    char b[17];
    std::snprintf(b, sizeof(b), "k%015llu", static_cast<unsigned long long>(i));
    return std::string(b, 16);
  };
  const std::string value = "0123456789";
  auto set = [&](const std::string& k) {
    return shard.Set(k, hasher(k), value, kNoExpiry, 0).ok();
  };
  auto read = [&](const std::string& k) {
    shard.Get(k, hasher(k), 0, [](std::string_view v) { benchmark::DoNotOptimize(v.data()); });
  };
  constexpr uint64_t kFill = 600'000;  // More than the shard holds: it is full.
  for (uint64_t i = 0; i < kFill; ++i) {
    set(key(i));
    read(key(i));
  }
  uint64_t next = kFill, drains = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (uint64_t i = next - kFill; i < next; ++i) {
      const std::string k = key(i);
      for (int r = 0; r < 3; ++r) read(k);
    }
    const uint64_t before = shard.SegmentsDrained();
    state.ResumeTiming();
    while (shard.SegmentsDrained() == before) set(key(next++));
    drains += shard.SegmentsDrained() - before;
  }
  state.counters["drains_per_write"] =
      benchmark::Counter(static_cast<double>(drains) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_S3FifoWorstCaseWrite)->Iterations(5)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace crabcache::core

BENCHMARK_MAIN();
