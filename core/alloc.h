// What an allocation really costs, for the store's memory accounting (internal to core).
//
// glibc keeps one size word in front of every chunk and rounds chunks to 16 bytes (32 at least);
// large requests are mmapped whole pages with a two-word header. The accounting charges what the
// allocator reports for the block plus that header word, so it follows the allocator rather than
// the request. Sanitizer allocators report the requested size instead; the accounting then follows
// them, which is still what that allocator hands out.
#ifndef CRABCACHE_CORE_ALLOC_H_
#define CRABCACHE_CORE_ALLOC_H_

#include <malloc.h>

#include <cstddef>

namespace crabcache::core {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedAllocator = true;
#elif defined(__has_feature)
inline constexpr bool kSanitizedAllocator = __has_feature(address_sanitizer) ||
                                            __has_feature(thread_sanitizer) ||
                                            __has_feature(memory_sanitizer);
#else
inline constexpr bool kSanitizedAllocator = false;
#endif

inline constexpr size_t kMallocHeader = sizeof(size_t);

// The charge of a live block returned by malloc/calloc/realloc/operator new: glibc's chunk size.
// REQUIRES: p != null.
inline size_t AllocCharge(const void* p) {
  const size_t usable = malloc_usable_size(const_cast<void*>(p));
  if (kSanitizedAllocator) return usable + kMallocHeader;
  // A heap chunk is a multiple of 16 bytes with one header word before the block; an mmapped
  // chunk is whole pages with two. So usable + 8 is a multiple of 16 exactly for heap chunks.
  return (usable + kMallocHeader) % 16 == 0 ? usable + kMallocHeader : usable + 2 * kMallocHeader;
}

// An upper bound on AllocCharge of a future malloc(n), to reserve budget before allocating: the
// larger of glibc's heap chunk and its mmapped chunk (whole pages, two header words).
inline constexpr size_t ChargeUpperBound(size_t n) {
  const size_t heap = n + kMallocHeader < 32 ? 32 : (n + kMallocHeader + 15) & ~size_t{15};
  const size_t mapped = (n + 2 * kMallocHeader + 4095) & ~size_t{4095};
  return n >= 64 * 1024 && mapped > heap ? mapped : heap;
}

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_ALLOC_H_
