// Hit ratio of each eviction policy on a Zipf(0.99) workload with the cache sized at 10 % of the
// key space. Prints both ratios; S3-FIFO must at least match LRU.
#include <cstdio>
#include <random>
#include <string>

#include "core/store.h"
#include "core/zipf.h"
#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

constexpr uint64_t kKeys = 20'000;
constexpr int kRequests = 400'000;

double HitRatio(EvictionPolicy policy, double skew, uint64_t seed) {
  FakeClock clock;
  // Find the cost of one entry, then size the budget to hold ~10 % of the keys.
  const std::string value(10, 'v');
  Store probe(StoreOptions{.num_shards = 1, .clock = &clock});
  const uint64_t empty = probe.Stats().memory_used_bytes;
  for (int i = 0; i < 1000; ++i) {
    const std::string k = "key:" + std::to_string(1'000'000 + i);
    (void)probe.Set(k, probe.Hash(k), value, kNoExpiry, clock.NowMs());
  }
  const uint64_t per_key = (probe.Stats().memory_used_bytes - empty) / 1000;
  Store store(StoreOptions{.num_shards = 1,
                           .max_memory_bytes = per_key * kKeys / 10,
                           .eviction = policy,
                           .clock = &clock});
  ZipfSampler zipf(kKeys, skew);
  std::mt19937_64 rng(seed);
  uint64_t hits = 0;
  std::string key;
  for (int i = 0; i < kRequests; ++i) {
    key = "key:" + std::to_string(zipf(rng));
    const uint64_t h = store.Hash(key);
    if (store.Get(key, h, clock.NowMs(), [](std::string_view) {})) {
      ++hits;
    } else {
      EXPECT_TRUE(store.Set(key, h, value, kNoExpiry, clock.NowMs()).ok());
    }
  }
  return static_cast<double>(hits) / kRequests;
}

TEST(HitRatioTest, S3FifoAtLeastMatchesLruOnZipf099) {
  const double lru = HitRatio(EvictionPolicy::kLru, 0.99, 1);
  const double s3fifo = HitRatio(EvictionPolicy::kS3Fifo, 0.99, 1);
  std::printf("zipf(0.99), cache = 10%% of %llu keys, %d requests: lru %.4f  s3fifo %.4f\n",
              static_cast<unsigned long long>(kKeys), kRequests, lru, s3fifo);
  EXPECT_GT(lru, 0.3);  // Sanity: the cache does hold the head of the distribution.
  EXPECT_GE(s3fifo, lru);
}

}  // namespace
}  // namespace crabcache::core
