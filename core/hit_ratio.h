// Hit-ratio simulation on the real Store, for the hit-ratio test and crabcache-hit-ratio-sim.
//
// The cache is one shard under a FakeClock. Its size is given in keys: the byte budget that holds
// that many entries is calibrated per policy (lru spends more bytes per key than s3fifo, so a
// byte-for-byte comparison would measure the layout, not the policy). The workload is
// "get, and set on a miss" over keys drawn from Zipf(skew).
#ifndef CRABCACHE_CORE_HIT_RATIO_H_
#define CRABCACHE_CORE_HIT_RATIO_H_

#include <cstdint>
#include <random>
#include <string>

#include "core/store.h"
#include "core/zipf.h"

namespace crabcache::core {

struct HitRatioResult {
  double hit_ratio = 0;
  double mean_keys = 0;  // Keys held, averaged over the run's second half.
  uint64_t budget_bytes = 0;
};

// Fixed-width keys ("key:0000000042"), so every entry has the same size and the calibration's
// keys cost what the run's keys cost.
inline std::string SimKey(uint64_t i) {
  std::string digits = std::to_string(i);
  return "key:" + std::string(digits.size() < 10 ? 10 - digits.size() : 0, '0') + digits;
}

// The smallest budget (to 0.5 %) under which a one-shard store of `policy` holds at least `keys`
// entries with value_bytes-byte values once it is full (found by bisection: the fixed overheads
// make keys held not proportional to the budget).
inline uint64_t CalibrateBudget(EvictionPolicy policy, uint64_t keys, size_t value_bytes) {
  FakeClock clock;
  const std::string value(value_bytes, 'v');
  auto held = [&](uint64_t budget) {
    Store store(StoreOptions{
        .num_shards = 1, .max_memory_bytes = budget, .eviction = policy, .clock = &clock});
    for (uint64_t i = 0; i < 3 * keys; ++i) {
      const std::string k = SimKey(9'000'000'000 + i);
      (void)store.Set(k, store.Hash(k), value, kNoExpiry, clock.NowMs());
    }
    return store.Stats().keys;
  };
  uint64_t lo = keys * 8;                    // Holds fewer.
  uint64_t hi = keys * (value_bytes + 256);  // Holds enough.
  while (hi - lo > hi / 200) {
    const uint64_t mid = lo + (hi - lo) / 2;
    (held(mid) >= keys ? hi : lo) = mid;
  }
  return hi;
}

inline HitRatioResult RunZipf(EvictionPolicy policy, uint64_t key_space, double skew,
                              uint64_t budget, int requests, uint64_t seed, size_t value_bytes) {
  FakeClock clock;
  Store store(StoreOptions{
      .num_shards = 1, .max_memory_bytes = budget, .eviction = policy, .clock = &clock});
  const std::string value(value_bytes, 'v');
  ZipfSampler zipf(key_space, skew);
  std::mt19937_64 rng(seed);
  uint64_t hits = 0;
  double key_sum = 0;
  int key_samples = 0;
  std::string key;
  for (int i = 0; i < requests; ++i) {
    key = SimKey(zipf(rng));
    const uint64_t h = store.Hash(key);
    if (store.Get(key, h, clock.NowMs(), [](std::string_view) {})) {
      ++hits;
    } else {
      (void)store.Set(key, h, value, kNoExpiry, clock.NowMs());
    }
    if (i >= requests / 2 && i % 1024 == 0) {
      key_sum += static_cast<double>(store.Stats().keys);
      ++key_samples;
    }
  }
  return HitRatioResult{static_cast<double>(hits) / requests,
                        key_samples == 0 ? 0 : key_sum / key_samples, budget};
}

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_HIT_RATIO_H_
