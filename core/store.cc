#include "core/store.h"

#include <bit>
#include <limits>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
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

namespace {

// The fields ShardStats and StoreStats share, as `"name":value,` pairs.
template <typename S>
void AppendCommonJson(std::string* out, const S& s) {
  absl::StrAppendFormat(
      out,
      "\"keys\":%d,\"memory_used_bytes\":%d,\"memory_limit_bytes\":%d,\"segment_bytes\":%d,"
      "\"heap_bytes\":%d,\"index_bytes\":%d,\"metadata_bytes\":%d,\"item_bytes\":%d,"
      "\"hits\":%d,\"misses\":%d,\"expirations\":%d,\"evictions\":%d,\"compactions\":%d",
      s.keys, s.memory_used_bytes, s.memory_limit_bytes, s.segment_bytes, s.heap_bytes,
      s.index_bytes, s.metadata_bytes, s.item_bytes, s.hits, s.misses, s.expirations, s.evictions,
      s.compactions);
}

}  // namespace

std::string StoreStats::ToJson() const {
  std::string out = "{";
  AppendCommonJson(&out, *this);
  absl::StrAppendFormat(&out, ",\"shards\":%d,\"eviction\":\"%s\",\"per_shard\":[", shards,
                        ToAbsl(EvictionPolicyName(eviction)));
  for (size_t i = 0; i < per_shard.size(); ++i) {
    out += i == 0 ? "{" : ",{";
    AppendCommonJson(&out, per_shard[i]);
    out += "}";
  }
  out += "]}";
  return out;
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
  ShardOptions shard_options;
  shard_options.policy = eviction_;
  shard_options.budget_bytes = max_memory_bytes_ == 0 ? 0 : (per_shard == 0 ? 1 : per_shard);
  shard_options.epoch = clock_->NowMs();
  shard_options.hasher = KeyHasher{seed_};
  shards_.reserve(num_shards_);
  for (size_t i = 0; i < num_shards_; ++i) shards_.push_back(NewShard(shard_options));
}

Store::~Store() = default;

Shard& Store::ShardFor(uint64_t hash) const {
  const size_t index = shard_shift_ == 64 ? 0 : static_cast<size_t>(hash >> shard_shift_);
  return *shards_[index];
}

uint64_t Store::Hash(std::string_view key) const { return KeyHasher{seed_}(key); }

void Store::Prefetch(uint64_t hash) const { ShardFor(hash).Prefetch(hash); }

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
  return ShardFor(hash).Set(key, hash, value, expire_at, now);
}

bool Store::Delete(std::string_view key, uint64_t hash, Millis now) {
  return ShardFor(hash).Delete(key, hash, now);
}

bool Store::Expire(std::string_view key, uint64_t hash, Millis expire_at, Millis now) {
  const absl::StatusOr<bool> found = TryExpire(key, hash, expire_at, now);
  return found.ok() && *found;
}

absl::StatusOr<bool> Store::TryExpire(std::string_view key, uint64_t hash, Millis expire_at,
                                      Millis now) {
  return ShardFor(hash).Expire(key, hash, expire_at, now);
}

int64_t Store::TtlMs(std::string_view key, uint64_t hash, Millis now) {
  return ShardFor(hash).TtlMs(key, hash, now);
}

size_t Store::SweepExpired(Millis now, size_t budget) {
  size_t reclaimed = 0;
  for (auto& shard : shards_) {
    reclaimed += shard->SweepExpired(now, budget, /*max_visited=*/32 * budget + 64);
  }
  return reclaimed;
}

StoreStats Store::Stats() const {
  StoreStats out;
  out.per_shard.reserve(shards_.size());
  for (const auto& shard : shards_) {
    const ShardStats s = shard->Stats();
    out.keys += s.keys;
    out.memory_used_bytes += s.memory_used_bytes;
    out.hits += s.hits;
    out.misses += s.misses;
    out.expirations += s.expirations;
    out.evictions += s.evictions;
    out.segment_bytes += s.segment_bytes;
    out.heap_bytes += s.heap_bytes;
    out.index_bytes += s.index_bytes;
    out.metadata_bytes += s.metadata_bytes;
    out.item_bytes += s.item_bytes;
    out.compactions += s.compactions;
    out.per_shard.push_back(s);
  }
  out.memory_limit_bytes = max_memory_bytes_;
  out.shards = num_shards_;
  out.eviction = eviction_;
  return out;
}

}  // namespace crabcache::core
