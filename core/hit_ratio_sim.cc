// Hit ratios of lru and s3fifo on the real Store over Zipf workloads: several skews and cache
// sizes, "get, set on a miss", 10-byte values, one shard. Prints a Markdown table.
//   crabcache-hit-ratio-sim [key_space=100000] [requests=2000000] [seed=1]
// "lru" and "s3fifo" each get the budget that holds the cache size in keys under that policy, so
// the columns compare the policies; "lru, s3fifo's bytes" gives lru s3fifo's byte budget, which
// compares the two as deployed (the layout included).
#include <cstdio>
#include <cstdlib>

#include "core/hit_ratio.h"

int main(int argc, char** argv) {
  using crabcache::core::EvictionPolicy;
  const uint64_t key_space = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100'000;
  const int requests = argc > 2 ? std::atoi(argv[2]) : 2'000'000;
  const uint64_t seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
  if (key_space < 100 || requests <= 0) {
    std::fprintf(stderr, "usage: %s [key_space>=100] [requests>0] [seed]\n", argv[0]);
    return 2;
  }
  constexpr size_t kValueBytes = 10;
  std::printf("key space %llu, %d requests, seed %llu, values %zu bytes\n\n",
              static_cast<unsigned long long>(key_space), requests,
              static_cast<unsigned long long>(seed), kValueBytes);
  std::printf(
      "| zipf skew | cache (keys) | lru | s3fifo | s3fifo - lru | keys held lru / s3fifo | "
      "lru, s3fifo's bytes |\n"
      "|---|---|---|---|---|---|---|\n");
  for (double skew : {0.6, 0.8, 0.99, 1.2}) {
    for (double share : {0.01, 0.05, 0.10, 0.25}) {
      const auto cache_keys = static_cast<uint64_t>(share * static_cast<double>(key_space));
      const uint64_t lru_budget =
          crabcache::core::CalibrateBudget(EvictionPolicy::kLru, cache_keys, kValueBytes);
      const uint64_t s3_budget =
          crabcache::core::CalibrateBudget(EvictionPolicy::kS3Fifo, cache_keys, kValueBytes);
      const auto lru = crabcache::core::RunZipf(EvictionPolicy::kLru, key_space, skew, lru_budget,
                                                requests, seed, kValueBytes);
      const auto s3 = crabcache::core::RunZipf(EvictionPolicy::kS3Fifo, key_space, skew, s3_budget,
                                               requests, seed, kValueBytes);
      const auto lru_same_bytes = crabcache::core::RunZipf(EvictionPolicy::kLru, key_space, skew,
                                                           s3_budget, requests, seed, kValueBytes);
      std::printf("| %.2f | %.0f%% (%llu) | %.4f | %.4f | %+.4f | %.0f / %.0f | %.4f |\n", skew,
                  share * 100, static_cast<unsigned long long>(cache_keys), lru.hit_ratio,
                  s3.hit_ratio, s3.hit_ratio - lru.hit_ratio, lru.mean_keys, s3.mean_keys,
                  lru_same_bytes.hit_ratio);
      std::fflush(stdout);
    }
  }
  return 0;
}
