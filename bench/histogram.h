// A log-linear latency histogram (HdrHistogram's idea, ~1.5 % precision): 64 linear sub-buckets
// per power of two. Fixed size, no allocation when recording; merge per-thread copies at the end.
#ifndef CRABCACHE_BENCH_HISTOGRAM_H_
#define CRABCACHE_BENCH_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace crabcache::bench {

// Not thread-safe: one per thread, merged afterwards.
class LatencyHistogram {
 public:
  void Record(uint64_t ns) { Record(ns, 1); }
  // Records `count` samples of the same value (the commands of one batch share its latency).
  void Record(uint64_t ns, uint64_t count) {
    counts_[Index(ns)] += count;
    total_ += count;
    if (ns > max_) max_ = ns;
  }
  void Merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    if (other.max_ > max_) max_ = other.max_;
  }
  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }
  // Nearest rank: the upper bound of the bucket holding the ceil(q * count)-th smallest sample
  // (at least the first), capped at the largest sample. So at least a share q of the samples are
  // <= the answer, which overstates the exact quantile by less than 1/kHalf (~1.6 %).
  uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    // The factor absorbs rounding such as 0.99 * 100 = 99.00000000000001.
    const double exact_rank = std::ceil(q * static_cast<double>(total_) * (1 - 1e-12));
    const uint64_t rank = std::clamp<uint64_t>(static_cast<uint64_t>(exact_rank), 1, total_);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return UpperBound(i) < max_ ? UpperBound(i) : max_;
    }
    return max_;
  }

 private:
  // Values below kExact are their own bucket. Above, a value v with top bits `top` (kHalf..
  // 2*kHalf-1) after shifting right by s >= 1 lands in bucket kExact + (s-1)*kHalf + top-kHalf:
  // kHalf buckets per power of two, so the relative error is below 1/kHalf (~1.6 %).
  static constexpr uint64_t kHalf = 64;
  static constexpr uint64_t kExact = 2 * kHalf;
  static constexpr int kHalfBits = 6;
  static constexpr size_t kBuckets = kExact + (64 - kHalfBits - 1) * kHalf;

  static size_t Index(uint64_t v) {
    if (v < kExact) return static_cast<size_t>(v);
    const int s = (63 - std::countl_zero(v)) - kHalfBits;  // >= 1
    const uint64_t top = v >> s;                           // in [kHalf, 2*kHalf)
    return static_cast<size_t>(kExact + (s - 1) * kHalf + (top - kHalf));
  }
  static uint64_t UpperBound(size_t index) {
    if (index < kExact) return index;
    const int s = static_cast<int>((index - kExact) / kHalf) + 1;
    const uint64_t top = (index - kExact) % kHalf + kHalf;
    return ((top + 1) << s) - 1;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_HISTOGRAM_H_
