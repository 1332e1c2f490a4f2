// Several threads run mixed batches through one Executor. Each thread owns a key range and checks
// every result against its own model; all threads also hammer a small shared key set, while a
// sweeper and a stats reader run alongside. Runs under TSan in `make test`.
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/executor.h"
#include "core/recording_sink.h"
#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

constexpr int kThreads = 4;
constexpr int kBatches = 2000;
constexpr int kBatchSize = 32;
constexpr int kOwnKeys = 64;

struct Model {
  std::map<std::string, std::string> values;
};

void Worker(int id, Executor* executor, std::atomic<int>* failures) {
  std::mt19937 rng(id * 7919 + 1);
  Model model;
  std::vector<std::string> keys, values;
  std::vector<Command> batch;
  std::vector<std::optional<OwnedResult>> expected;
  for (int b = 0; b < kBatches; ++b) {
    keys.clear();
    values.clear();
    batch.clear();
    expected.clear();
    keys.reserve(kBatchSize);
    values.reserve(kBatchSize);
    for (int i = 0; i < kBatchSize; ++i) {
      const bool shared = rng() % 8 == 0;
      keys.push_back(shared ? "shared-" + std::to_string(rng() % 4)
                            : "t" + std::to_string(id) + "-" + std::to_string(rng() % kOwnKeys));
      values.push_back(std::string(rng() % 100, static_cast<char>('a' + rng() % 26)));
      const std::string& k = keys.back();
      const int op = static_cast<int>(rng() % 10);
      std::optional<OwnedResult> want;
      if (op < 4) {
        batch.push_back(Command::Get(k));
        if (!shared) {
          auto it = model.values.find(k);
          want = it == model.values.end() ? OwnedResult{ResultCode::kMiss}
                                          : OwnedResult{ResultCode::kHit, it->second};
        }
      } else if (op < 8) {
        batch.push_back(Command::Set(k, values.back()));
        if (!shared) model.values[k] = values.back();
        want = OwnedResult{ResultCode::kOk};
      } else if (op < 9) {
        batch.push_back(Command::Delete(k));
        if (!shared)
          want = OwnedResult{model.values.erase(k) ? ResultCode::kOk : ResultCode::kNotFound};
      } else {
        batch.push_back(Command::Ttl(k));
        if (!shared) {
          want =
              OwnedResult{ResultCode::kTtl, "", model.values.count(k) ? kTtlNoExpiry : kTtlMissing};
        }
      }
      expected.push_back(want);
    }
    RecordingSink sink;
    executor->Execute(Frontend::kFastPath, batch, sink);
    if (sink.results.size() != batch.size()) {
      failures->fetch_add(1);
      return;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!expected[i]) continue;
      const OwnedResult& got = sink.results[i];
      if (got.code != expected[i]->code || got.value != expected[i]->value ||
          got.ttl_ms != expected[i]->ttl_ms) {
        failures->fetch_add(1);
      }
    }
  }
}

class StressTest : public ::testing::TestWithParam<EvictionPolicy> {};

TEST_P(StressTest, ConcurrentBatchesMatchPerThreadModels) {
  // Room for every key: the per-thread models must hold exactly.
  Store store(StoreOptions{.num_shards = 8, .max_memory_bytes = 64 << 20, .eviction = GetParam()});
  Executor executor(&store, nullptr);
  std::atomic<int> failures{0};
  std::atomic<bool> done{false};
  std::thread background([&] {
    while (!done.load()) {
      store.SweepExpired(store.Now(), 16);
      (void)store.Stats();
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) workers.emplace_back(Worker, t, &executor, &failures);
  for (auto& w : workers) w.join();
  done.store(true);
  background.join();
  EXPECT_EQ(failures.load(), 0);
  const StoreStats s = store.Stats();
  EXPECT_GT(s.hits + s.misses, 0u);
}

TEST_P(StressTest, ConcurrentEvictionKeepsAccountingWithinLimit) {
  const uint64_t budget = 256 * 1024;
  const bool evicts = GetParam() != EvictionPolicy::kNoEviction;
  Store store(StoreOptions{.num_shards = 4, .max_memory_bytes = budget, .eviction = GetParam()});
  Executor executor(&store, nullptr);
  std::vector<std::thread> workers;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(t);
      const std::string value(200, 'x');
      std::vector<std::string> keys(kBatchSize);
      std::vector<Command> batch(kBatchSize);
      for (int b = 0; b < kBatches; ++b) {
        for (int i = 0; i < kBatchSize; ++i) {
          keys[i] = "k" + std::to_string(rng() % 5000);
          batch[i] = (i % 3 == 0) ? Command::Get(keys[i]) : Command::Set(keys[i], value);
        }
        RecordingSink sink;
        executor.Execute(Frontend::kGrpc, batch, sink);
        for (const auto& r : sink.results) {
          // noeviction answers out-of-memory once full; nothing else may fail.
          const bool oom = r.code == ResultCode::kError &&
                           r.error == absl::StatusCode::kResourceExhausted && !evicts;
          errors += r.code == ResultCode::kError && !oom;
        }
        if (store.Stats().memory_used_bytes > budget) errors += 1000;
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(store.Stats().evictions > 0, evicts);
}

INSTANTIATE_TEST_SUITE_P(Policies, StressTest,
                         ::testing::Values(EvictionPolicy::kS3Fifo, EvictionPolicy::kLru,
                                           EvictionPolicy::kNoEviction),
                         [](const auto& info) {
                           return std::string(EvictionPolicyName(info.param));
                         });

}  // namespace
}  // namespace crabcache::core
