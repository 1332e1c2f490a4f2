// Several threads run mixed batches through one Executor while other threads move a shared fake
// clock, run the ExpirySweeper and read stats. Each worker owns a key range and checks every
// result on it against its own model, TTLs included; all workers also hammer a small shared key
// set. Runs under TSan in `make test` (a few seconds), so entry relocation (a key's first
// EXPIRE rewrites it at the head of its queue), lazy expiry, the sweeper's reclaim and eviction
// race each other there.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "core/executor.h"
#include "core/recording_sink.h"
#include "core/sweeper.h"
#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

constexpr int kThreads = 4;
constexpr int kBatches = 2000;
constexpr int kBatchSize = 32;
constexpr int kOwnKeys = 64;

// What a worker knows of one of its keys. The clock moves while a batch runs, so the batch's
// instant (read once by the executor) is only known to lie in [t0, t1], the clock before and
// after the call; an expiry set in that batch lies in [t0 + ttl, t1 + ttl].
struct Entry {
  std::string value;
  bool has_ttl = false;
  Millis expires_lo = 0;
  Millis expires_hi = 0;
};

enum class Liveness { kAbsent, kAlive, kExpired, kUnknown };

// How often the model could check each case exactly (so a change in pacing that made the test
// vacuous would show).
struct Coverage {
  std::atomic<uint64_t> expired_misses{0};  // Reads after the instant passed the expiry.
  std::atomic<uint64_t> ttl_hits{0};        // Reads of a key with a TTL it had not reached.
  std::atomic<uint64_t> first_expires{0};   // EXPIREs on a key without one: the entry moves.
};

class Model {
 public:
  explicit Model(Coverage* coverage) : coverage_(coverage) {}

  // Checks the result of `c` on an owned key, run by a batch whose instant lies in [t0, t1], and
  // applies its effect. Returns false on a wrong result. Where the model cannot know (the expiry
  // falls inside [t0, t1]) the result decides.
  bool Apply(const Command& c, const OwnedResult& r, Millis t0, Millis t1) {
    const std::string key(c.key);
    auto it = entries_.find(key);
    Liveness live = Liveness::kAbsent;
    if (it != entries_.end()) {
      const Entry& e = it->second;
      if (!e.has_ttl || t1 < e.expires_lo) {
        live = Liveness::kAlive;
      } else if (t0 >= e.expires_hi) {
        live = Liveness::kExpired;
      } else {
        live = Liveness::kUnknown;
      }
    }
    // Once the instant passed the expiry the key is gone for good: time only moves forward.
    auto gone = [&] {
      if (it != entries_.end()) entries_.erase(it);
      return true;
    };
    switch (c.id) {
      case CommandId::kGet:
        if (live == Liveness::kExpired) ++coverage_->expired_misses;
        if (live == Liveness::kAlive && it->second.has_ttl) ++coverage_->ttl_hits;
        if (r.code == ResultCode::kMiss) return live == Liveness::kAlive ? false : gone();
        return r.code == ResultCode::kHit &&
               (live == Liveness::kAlive || live == Liveness::kUnknown) &&
               r.value == it->second.value;
      case CommandId::kSet: {
        if (r.code != ResultCode::kOk) return false;
        if (c.has_ttl && c.ttl_ms == 0) {  // Expires at once: nothing is stored.
          entries_.erase(key);
          return true;
        }
        Entry e{std::string(c.value), c.has_ttl, t0 + c.ttl_ms, t1 + c.ttl_ms};
        entries_[key] = e;
        return true;
      }
      case CommandId::kDelete:
        if (r.code == ResultCode::kOk)
          return live != Liveness::kAbsent && live != Liveness::kExpired && gone();
        return r.code == ResultCode::kNotFound && live != Liveness::kAlive && gone();
      case CommandId::kExpire:
        if (r.code == ResultCode::kNotFound) return live != Liveness::kAlive && gone();
        if (r.code != ResultCode::kOk) return false;
        if (live != Liveness::kAlive && live != Liveness::kUnknown) return false;
        if (c.ttl_ms == 0) return gone();
        if (!it->second.has_ttl) ++coverage_->first_expires;
        it->second.has_ttl = true;
        it->second.expires_lo = t0 + c.ttl_ms;
        it->second.expires_hi = t1 + c.ttl_ms;
        return true;
      case CommandId::kTtl: {
        if (r.code != ResultCode::kTtl) return false;
        if (r.ttl_ms == kTtlMissing) return live != Liveness::kAlive && gone();
        if (live != Liveness::kAlive && live != Liveness::kUnknown) return false;
        const Entry& e = it->second;
        if (!e.has_ttl) return r.ttl_ms == kTtlNoExpiry;
        // expiry - instant, with the expiry in [lo, hi] and the instant in [t0, t1], and > 0.
        const int64_t most = static_cast<int64_t>(e.expires_hi - t0);
        const int64_t least = e.expires_lo > t1 ? static_cast<int64_t>(e.expires_lo - t1) : 1;
        return r.ttl_ms >= least && r.ttl_ms <= most;
      }
      default:
        return false;
    }
  }

 private:
  Coverage* const coverage_;
  std::map<std::string, Entry> entries_;
};

// A TTL in milliseconds: mostly a few ticks of the clock thread, so keys expire during the run;
// sometimes 0 (at once) or long.
uint64_t RandomTtl(std::mt19937& rng) {
  const uint32_t pick = rng() % 16;
  if (pick == 0) return 0;
  if (pick == 1) return 100000;
  return 1 + rng() % 30;
}

void Worker(int id, Executor* executor, const FakeClock* clock, Coverage* coverage,
            std::atomic<int>* failures) {
  std::mt19937 rng(id * 7919 + 1);
  Model model(coverage);
  std::vector<std::string> keys, values;
  std::vector<Command> batch;
  std::vector<bool> owned;
  for (int b = 0; b < kBatches; ++b) {
    keys.clear();
    values.clear();
    batch.clear();
    owned.clear();
    keys.reserve(kBatchSize);  // Commands view these strings: no reallocation.
    values.reserve(kBatchSize);
    for (int i = 0; i < kBatchSize; ++i) {
      const bool shared = rng() % 8 == 0;
      keys.push_back(shared ? "shared-" + std::to_string(rng() % 4)
                            : "t" + std::to_string(id) + "-" + std::to_string(rng() % kOwnKeys));
      values.push_back(std::string(rng() % 100, static_cast<char>('a' + rng() % 26)));
      const std::string& k = keys.back();
      const int op = static_cast<int>(rng() % 20);
      if (op < 7) {
        batch.push_back(Command::Get(k));
      } else if (op < 12) {
        batch.push_back(Command::Set(k, values.back()));
      } else if (op < 15) {
        batch.push_back(Command::SetWithTtl(k, values.back(), RandomTtl(rng)));
      } else if (op < 17) {
        batch.push_back(Command::Expire(k, RandomTtl(rng)));
      } else if (op < 18) {
        batch.push_back(Command::Delete(k));
      } else {
        batch.push_back(Command::Ttl(k));
      }
      owned.push_back(!shared);
    }
    RecordingSink sink;
    const Millis t0 = clock->NowMs();
    executor->Execute(Frontend::kFastPath, batch, sink);
    const Millis t1 = clock->NowMs();
    if (sink.results.size() != batch.size()) {
      failures->fetch_add(1);
      return;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (owned[i] && !model.Apply(batch[i], sink.results[i], t0, t1)) {
        ADD_FAILURE() << "thread " << id << " batch " << b << " command " << i << " key "
                      << batch[i].key << ": code " << static_cast<int>(sink.results[i].code)
                      << " ttl " << sink.results[i].ttl_ms;
        failures->fetch_add(1);
      }
    }
  }
}

class StressTest : public ::testing::TestWithParam<EvictionPolicy> {};

TEST_P(StressTest, ConcurrentBatchesWithTtlsMatchPerThreadModels) {
  // Room for every key: the per-thread models must hold exactly.
  FakeClock clock;
  Store store(StoreOptions{
      .num_shards = 8, .max_memory_bytes = 64 << 20, .eviction = GetParam(), .clock = &clock});
  Executor executor(&store, nullptr);
  ExpirySweeper sweeper(&store, absl::Milliseconds(1), 16);
  sweeper.Start();
  std::atomic<int> failures{0};
  Coverage coverage;
  std::atomic<bool> done{false};
  // About 10 fake milliseconds per real one: a 1..30 ms TTL outlives a few batches.
  std::thread ticker([&] {
    while (!done.load()) {
      clock.Advance(1);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  std::thread stats([&] {
    while (!done.load()) {
      (void)store.Stats();
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back(Worker, t, &executor, &clock, &coverage, &failures);
  }
  for (auto& w : workers) w.join();
  done.store(true);
  ticker.join();
  stats.join();
  sweeper.Stop();
  EXPECT_EQ(failures.load(), 0);
  const StoreStats s = store.Stats();
  std::printf(
      "fake ms %llu, expired misses %llu, ttl hits %llu, first expires %llu, "
      "expirations %llu\n",
      static_cast<unsigned long long>(clock.NowMs() - 1'000'000),
      static_cast<unsigned long long>(coverage.expired_misses.load()),
      static_cast<unsigned long long>(coverage.ttl_hits.load()),
      static_cast<unsigned long long>(coverage.first_expires.load()),
      static_cast<unsigned long long>(s.expirations));
  EXPECT_GT(coverage.expired_misses.load(), 0u);
  EXPECT_GT(coverage.ttl_hits.load(), 0u);
  EXPECT_GT(coverage.first_expires.load(), 0u);
  EXPECT_GT(s.expirations, 0u);  // Reclaimed lazily or by the sweeper.
}

TEST_P(StressTest, ConcurrentEvictionKeepsAccountingWithinLimitAndHitsAreLatest) {
  const uint64_t budget = 256 * 1024;
  const bool evicts = GetParam() != EvictionPolicy::kNoEviction;
  Store store(StoreOptions{.num_shards = 4, .max_memory_bytes = budget, .eviction = GetParam()});
  Executor executor(&store, nullptr);
  std::vector<std::thread> workers;
  std::atomic<int> errors{0};
  std::atomic<int> stale{0};
  std::atomic<uint64_t> checked_hits{0};
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(t);
      // Each thread owns its keys; every value it writes is distinct (a counter), so a hit can
      // be checked against the last value this thread stored under the key.
      std::map<std::string, std::string> last;
      uint64_t counter = 0;
      std::vector<std::string> keys(kBatchSize), values(kBatchSize);
      std::vector<Command> batch(kBatchSize);
      for (int b = 0; b < kBatches; ++b) {
        for (int i = 0; i < kBatchSize; ++i) {
          keys[i] = "k" + std::to_string(t) + "-" + std::to_string(rng() % 1250);
          if (i % 3 == 0) {
            batch[i] = Command::Get(keys[i]);
          } else {
            values[i] = std::to_string(++counter);
            values[i].resize(200, 'x');
            batch[i] = Command::Set(keys[i], values[i]);
          }
        }
        RecordingSink sink;
        executor.Execute(Frontend::kGrpc, batch, sink);
        for (int i = 0; i < kBatchSize; ++i) {
          const OwnedResult& r = sink.results[i];
          if (batch[i].id == CommandId::kSet) {
            // noeviction answers out-of-memory once full and keeps the old value; nothing else
            // may fail.
            if (r.code == ResultCode::kOk) {
              last[keys[i]] = values[i];
            } else if (r.code != ResultCode::kError ||
                       r.error != absl::StatusCode::kResourceExhausted || evicts) {
              ++errors;
            }
          } else if (r.code == ResultCode::kHit) {
            auto it = last.find(keys[i]);
            if (it == last.end() || r.value != it->second) ++stale;
            ++checked_hits;
          } else if (r.code != ResultCode::kMiss) {
            ++errors;
          }
        }
        if (store.Stats().memory_used_bytes > budget) errors += 1000;
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(stale.load(), 0);
  EXPECT_GT(checked_hits.load(), 0u);
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
