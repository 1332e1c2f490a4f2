// Measures resident memory per key: loads N keys of K bytes with V-byte values into a Store and
// reports (RSS after - RSS before) / N, next to the store's own accounting and its breakdown.
//   crabcache-rss-per-key [keys=1000000] [key_bytes=16] [value_bytes=10] [policy=s3fifo]
//                         [max_memory_bytes=0 (unlimited)]
// Keys are the decimal index, zero-padded to key_bytes ("0000000000000042"); every value is
// value_bytes of 'v'. core/rss_vs_redis.sh loads the same data into redis-server.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/store.h"

namespace {

long RssBytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// A fixed-width key made of the index, so every key is distinct and exactly `width` bytes.
void FormatKey(std::string* key, long i, int width) {
  key->assign(static_cast<size_t>(width), '0');
  for (int pos = width - 1; pos >= 0 && i > 0; --pos, i /= 10) (*key)[pos] = '0' + (i % 10);
}

}  // namespace

int main(int argc, char** argv) {
  using crabcache::core::EvictionPolicy;
  const long keys = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const int key_bytes = argc > 2 ? std::atoi(argv[2]) : 16;
  const int value_bytes = argc > 3 ? std::atoi(argv[3]) : 10;
  EvictionPolicy policy = EvictionPolicy::kS3Fifo;
  const bool policy_ok = argc <= 4 || crabcache::core::ParseEvictionPolicy(argv[4], &policy);
  const unsigned long long max_memory = argc > 5 ? std::strtoull(argv[5], nullptr, 10) : 0;
  if (keys <= 0 || key_bytes < 8 || value_bytes < 0 || !policy_ok) {
    std::fprintf(stderr,
                 "usage: %s [keys>0] [key_bytes>=8] [value_bytes>=0] [s3fifo|lru|noeviction] "
                 "[max_memory_bytes]\n",
                 argv[0]);
    return 2;
  }
  auto* store = new crabcache::core::Store(
      crabcache::core::StoreOptions{.max_memory_bytes = max_memory, .eviction = policy});
  const long before = RssBytes();
  const std::string value(static_cast<size_t>(value_bytes), 'v');
  std::string key;
  const auto now = store->Now();
  for (long i = 0; i < keys; ++i) {
    FormatKey(&key, i, key_bytes);
    if (!store->Set(key, store->Hash(key), value, crabcache::core::kNoExpiry, now).ok()) {
      std::fprintf(stderr, "set failed at %ld\n", i);
      return 1;
    }
  }
  const long after = RssBytes();
  const auto s = store->Stats();
  const double n = static_cast<double>(keys);
  std::printf(
      "{\"keys\":%ld,\"key_bytes\":%d,\"value_bytes\":%d,\"policy\":\"%s\",\"shards\":%llu,"
      "\"max_memory_bytes\":%llu,\"keys_stored\":%llu,\"rss_bytes_per_key\":%.1f,"
      "\"accounted_bytes_per_key\":%.1f,\"segment_bytes_per_key\":%.1f,"
      "\"item_bytes_per_key\":%.1f,\"heap_bytes_per_key\":%.1f,\"index_bytes_per_key\":%.1f,"
      "\"metadata_bytes_per_key\":%.1f}\n",
      keys, key_bytes, value_bytes, std::string(EvictionPolicyName(policy)).c_str(),
      static_cast<unsigned long long>(s.shards), max_memory,
      static_cast<unsigned long long>(s.keys), static_cast<double>(after - before) / n,
      static_cast<double>(s.memory_used_bytes) / n, static_cast<double>(s.segment_bytes) / n,
      static_cast<double>(s.item_bytes) / n, static_cast<double>(s.heap_bytes) / n,
      static_cast<double>(s.index_bytes) / n, static_cast<double>(s.metadata_bytes) / n);
  return 0;
}
