// The keys and values every bench engine uses, generated in place so that prefill, requests and
// reply verification agree without storing the key space or allocating per request.
//
//   key i   = "key:" + i in decimal, zero-padded to exactly key_size bytes
//   value i = i in decimal + ":" + the letter 'a' + i % 26 repeated, cut to exactly value_size
//
// SETs during a run write the same value i to key i, so a GET of key i must return value i no
// matter how requests from different connections interleave: a reply can always be verified.
#ifndef CRABCACHE_BENCH_KEYSPACE_H_
#define CRABCACHE_BENCH_KEYSPACE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace crabcache::bench {

// Immutable after Create; thread-safe (all methods are const and touch only their arguments).
class KeySpace {
 public:
  static constexpr size_t kMaxKeySize = 64 * 1024;
  static constexpr size_t kMaxValueSize = 64 * 1024 * 1024;

  // Fails unless 1 <= keys, every key index fits in key_size ("key:" plus its digits) and the
  // sizes are within the limits above.
  static absl::StatusOr<KeySpace> Create(uint64_t keys, size_t key_size, size_t value_size);

  uint64_t keys() const { return keys_; }
  size_t key_size() const { return key_size_; }
  size_t value_size() const { return value_size_; }

  // Writes key i into out[0, key_size()). REQUIRES: i < keys().
  void WriteKey(uint64_t i, char* out) const;
  // Writes value i into out[0, value_size()).
  void WriteValue(uint64_t i, char* out) const;
  // True iff `value` is exactly value i. Does not allocate.
  bool ValueMatches(uint64_t i, std::string_view value) const;

  // Allocating conveniences for tests and error messages.
  std::string Key(uint64_t i) const;
  std::string Value(uint64_t i) const;

 private:
  KeySpace(uint64_t keys, size_t key_size, size_t value_size)
      : keys_(keys), key_size_(key_size), value_size_(value_size) {}

  uint64_t keys_;
  size_t key_size_;
  size_t value_size_;
};

// xoshiro256** (Blackman and Vigna): small, fast and good enough to pick keys and operations.
// Not thread-safe: one per thread.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, n) by Lemire's multiply-shift (bias below 2^-64 * n). REQUIRES: n > 0.
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t s_[4];
};

// Picks GET with probability `get_ratio` (clamped to [0, 1]) and SET otherwise, from one Rng
// draw and an integer comparison.
class OpPicker {
 public:
  explicit OpPicker(double get_ratio);
  bool NextIsGet(Rng& rng) const { return (rng.Next() >> 11) < threshold_; }

 private:
  uint64_t threshold_;  // Out of 2^53.
};

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_KEYSPACE_H_
