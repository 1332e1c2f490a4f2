#include "core/store.h"

#include <bit>
#include <limits>
#include <random>
#include <thread>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "core/entry.h"
#include "core/shard.h"
#include "core/string_view.h"

namespace crabcache::core {
namespace {

uint64_t RandomSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ 0x9e3779b97f4a7c15ull;
}

size_t DefaultShards() {
  const unsigned cores = std::thread::hardware_concurrency();
  return 4 * static_cast<size_t>(cores == 0 ? 1 : cores);
}

}  // namespace

std::string_view EvictionPolicyName(EvictionPolicy policy) {
  switch (policy) {
    case EvictionPolicy::kS3Fifo:
      return "s3fifo";
    case EvictionPolicy::kLru:
      return "lru";
    case EvictionPolicy::kNoEviction:
      return "noeviction";
  }
  return "unknown";
}

bool ParseEvictionPolicy(std::string_view name, EvictionPolicy* policy) {
  const std::string lower = absl::AsciiStrToLower(ToAbsl(name));
  for (EvictionPolicy p :
       {EvictionPolicy::kS3Fifo, EvictionPolicy::kLru, EvictionPolicy::kNoEviction}) {
    if (lower == EvictionPolicyName(p)) {
      *policy = p;
      return true;
    }
  }
  return false;
}

Millis ExpiryAfter(Millis now, uint64_t ttl_ms) {
  if (ttl_ms > std::numeric_limits<Millis>::max() - now) return std::numeric_limits<Millis>::max();
  const Millis at = now + ttl_ms;
  return at == kNoExpiry ? 1 : at;  // 0 is reserved for "never".
}

std::string StoreStats::ToJson() const {
  return absl::StrFormat(
      "{\"keys\":%d,\"memory_used_bytes\":%d,\"memory_limit_bytes\":%d,\"hits\":%d,"
      "\"misses\":%d,\"expirations\":%d,\"evictions\":%d,\"shards\":%d,\"eviction\":\"%s\"}",
      keys, memory_used_bytes, memory_limit_bytes, hits, misses, expirations, evictions, shards,
      ToAbsl(EvictionPolicyName(eviction)));
}

Store::Store(const StoreOptions& options)
    : clock_(options.clock != nullptr ? options.clock : SystemClock()),
      seed_(options.hash_seed != 0 ? options.hash_seed : RandomSeed()),
      eviction_(options.eviction),
      max_memory_bytes_(options.max_memory_bytes) {
  const size_t wanted = options.num_shards != 0 ? options.num_shards : DefaultShards();
  num_shards_ = std::bit_ceil(wanted);
  const int bits = std::countr_zero(num_shards_);
  shard_shift_ = 64 - bits;
  const uint64_t per_shard = max_memory_bytes_ / num_shards_;
  shards_.reserve(num_shards_);
  for (size_t i = 0; i < num_shards_; ++i) {
    shards_.push_back(std::make_unique<Shard>(
        eviction_, max_memory_bytes_ == 0 ? 0 : (per_shard == 0 ? 1 : per_shard)));
  }
}

Store::~Store() = default;

Shard& Store::ShardFor(uint64_t hash) const {
  const size_t index = shard_shift_ == 64 ? 0 : static_cast<size_t>(hash >> shard_shift_);
  return *shards_[index];
}

uint64_t Store::Hash(std::string_view key) const {
  return absl::Hash<std::pair<uint64_t, std::string_view>>{}(std::make_pair(seed_, key));
}

bool Store::Get(std::string_view key, uint64_t hash, Millis now,
                absl::FunctionRef<void(std::string_view value)> on_hit) {
  return ShardFor(hash).Get(key, hash, now, on_hit);
}

absl::Status Store::Set(std::string_view key, uint64_t hash, std::string_view value,
                        Millis expire_at, Millis now) {
  if (key.size() > std::numeric_limits<uint32_t>::max() ||
      value.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("key or value longer than 4 GiB");
  }
  if (max_memory_bytes_ != 0 &&
      Entry::ChargeFor(key.size(), value.size()) > max_memory_bytes_ / num_shards_) {
    return absl::ResourceExhaustedError("OOM value larger than the memory limit allows");
  }
  // Allocate and copy outside the shard lock; the shard takes ownership.
  Entry* entry = Entry::Create(hash, key, value, expire_at);
  if (entry == nullptr) return absl::ResourceExhaustedError("OOM allocation failed");
  return ShardFor(hash).Insert(entry, now);
}

bool Store::Delete(std::string_view key, uint64_t hash, Millis now) {
  return ShardFor(hash).Delete(key, hash, now);
}

bool Store::Expire(std::string_view key, uint64_t hash, Millis expire_at, Millis now) {
  return ShardFor(hash).Expire(key, hash, expire_at, now);
}

int64_t Store::TtlMs(std::string_view key, uint64_t hash, Millis now) {
  return ShardFor(hash).TtlMs(key, hash, now);
}

size_t Store::SweepExpired(Millis now, size_t budget) {
  size_t reclaimed = 0;
  for (auto& shard : shards_) {
    reclaimed += shard->SweepExpired(now, budget, /*max_buckets=*/4 * budget);
  }
  return reclaimed;
}

StoreStats Store::Stats() const {
  StoreStats out;
  for (const auto& shard : shards_) {
    const ShardStats s = shard->Stats();
    out.keys += s.keys;
    out.memory_used_bytes += s.memory_used_bytes;
    out.hits += s.hits;
    out.misses += s.misses;
    out.expirations += s.expirations;
    out.evictions += s.evictions;
  }
  out.memory_limit_bytes = max_memory_bytes_;
  out.shards = num_shards_;
  out.eviction = eviction_;
  return out;
}

}  // namespace crabcache::core
