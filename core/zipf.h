// A Zipf(s) sampler over [0, n) by inverse CDF; for hit-ratio simulations and benchmarks.
#ifndef CRABCACHE_CORE_ZIPF_H_
#define CRABCACHE_CORE_ZIPF_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace crabcache::core {

// Not thread-safe; one per thread. Rank 0 is the most popular item.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double s) : cdf_(n) {
    double sum = 0;
    for (uint64_t i = 0; i < n; ++i)
      cdf_[i] = (sum += 1.0 / std::pow(static_cast<double>(i + 1), s));
    for (double& c : cdf_) c /= sum;
  }
  template <typename Rng>
  uint64_t operator()(Rng& rng) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    return static_cast<uint64_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_ZIPF_H_
