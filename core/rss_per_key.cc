// Measures resident memory per key: loads N keys of K bytes with V-byte values into a Store and
// reports (RSS after - RSS before) / N, next to the store's own accounting.
//   build/release/core/crabcache-rss-per-key [keys=1000000] [key_bytes=16] [value_bytes=10]
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
  const long keys = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const int key_bytes = argc > 2 ? std::atoi(argv[2]) : 16;
  const int value_bytes = argc > 3 ? std::atoi(argv[3]) : 10;
  if (keys <= 0 || key_bytes < 8 || value_bytes < 0) {
    std::fprintf(stderr, "usage: %s [keys>0] [key_bytes>=8] [value_bytes>=0]\n", argv[0]);
    return 2;
  }
  using crabcache::core::Store;
  auto* store = new Store(crabcache::core::StoreOptions{});
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
  const auto stats = store->Stats();
  std::printf(
      "{\"keys\":%ld,\"key_bytes\":%d,\"value_bytes\":%d,\"rss_bytes_per_key\":%.1f,"
      "\"accounted_bytes_per_key\":%.1f}\n",
      keys, key_bytes, value_bytes, static_cast<double>(after - before) / keys,
      static_cast<double>(stats.memory_used_bytes) / keys);
  return 0;
}
