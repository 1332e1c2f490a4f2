// Hit ratio of each eviction policy on a Zipf(0.99) workload with the cache sized at 10 % of the
// key space (in keys, per policy). Prints both ratios; S3-FIFO must at least match LRU.
#include "core/hit_ratio.h"

#include <cstdio>

#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

constexpr uint64_t kKeys = 20'000;
constexpr int kRequests = 400'000;
constexpr size_t kValueBytes = 10;

TEST(HitRatioTest, S3FifoAtLeastMatchesLruOnZipf099) {
  HitRatioResult r[2];
  const EvictionPolicy policies[2] = {EvictionPolicy::kLru, EvictionPolicy::kS3Fifo};
  for (int p = 0; p < 2; ++p) {
    const uint64_t budget = CalibrateBudget(policies[p], kKeys / 10, kValueBytes);
    r[p] = RunZipf(policies[p], kKeys, 0.99, budget, kRequests, /*seed=*/1, kValueBytes);
    // The cache really holds about 10 % of the keys (a segment's worth of slack for s3fifo).
    EXPECT_NEAR(r[p].mean_keys, kKeys / 10.0, kKeys / 10.0 * 0.1)
        << EvictionPolicyName(policies[p]);
  }
  std::printf(
      "zipf(0.99), cache = 10%% of %llu keys, %d requests: lru %.4f (%.0f keys, %llu bytes)  "
      "s3fifo %.4f (%.0f keys, %llu bytes)\n",
      static_cast<unsigned long long>(kKeys), kRequests, r[0].hit_ratio, r[0].mean_keys,
      static_cast<unsigned long long>(r[0].budget_bytes), r[1].hit_ratio, r[1].mean_keys,
      static_cast<unsigned long long>(r[1].budget_bytes));
  EXPECT_GT(r[0].hit_ratio, 0.3);  // Sanity: the cache does hold the head of the distribution.
  EXPECT_GE(r[1].hit_ratio, r[0].hit_ratio);
}

}  // namespace
}  // namespace crabcache::core
