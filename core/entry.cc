#include "core/entry.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace crabcache::core {
namespace {

// glibc keeps one size word in front of every chunk; it is memory the entry really costs.
constexpr size_t kMallocOverhead = sizeof(size_t);

}  // namespace

Entry* Entry::Create(uint64_t hash, std::string_view key, std::string_view value,
                     Millis expire_at) {
  const size_t size = sizeof(Entry) + key.size() + value.size();
  void* mem = std::malloc(size);
  if (mem == nullptr) return nullptr;
  Entry* e = static_cast<Entry*>(mem);
  e->chain = e->prev = e->next = nullptr;
  e->hash = hash;
  e->expire_at = expire_at;
  e->key_len = static_cast<uint32_t>(key.size());
  e->value_len = static_cast<uint32_t>(value.size());
  e->charge = static_cast<uint32_t>(malloc_usable_size(mem) + kMallocOverhead);
  e->queue = Queue::kSmall;
  e->freq = 0;
  if (!key.empty()) std::memcpy(e->data(), key.data(), key.size());
  if (!value.empty()) std::memcpy(e->data() + key.size(), value.data(), value.size());
  return e;
}

void Entry::Destroy(Entry* entry) { std::free(entry); }

size_t Entry::ChargeFor(size_t key_len, size_t value_len) {
  // glibc rounds requests up to 16-byte chunks of at least 32 bytes, size word included.
  const size_t request = sizeof(Entry) + key_len + value_len + kMallocOverhead;
  const size_t chunk = (request + 15) & ~size_t{15};
  return chunk < 32 ? 32 : chunk;
}

}  // namespace crabcache::core
