#include "fastpath/buffer.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace crabcache::fastpath {
namespace {

constexpr size_t kMinCapacity = 256;

}  // namespace

Buffer::~Buffer() { std::free(data_); }

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      begin_(std::exchange(other.begin_, 0)),
      end_(std::exchange(other.end_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Release();
    Swap(other);
  }
  return *this;
}

void Buffer::Release() {
  std::free(data_);
  data_ = nullptr;
  begin_ = end_ = capacity_ = 0;
}

void Buffer::Swap(Buffer& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(begin_, other.begin_);
  std::swap(end_, other.end_);
  std::swap(capacity_, other.capacity_);
}

void Buffer::Grow(size_t n) {
  const size_t live = size();
  // Enough room once the consumed front is reclaimed, and the move is cheap relative to the
  // block: slide the live bytes down instead of allocating.
  if (capacity_ - live >= n && live <= capacity_ / 2) {
    std::memmove(data_, data_ + begin_, live);
    begin_ = 0;
    end_ = live;
    return;
  }
  size_t want = capacity_ < kMinCapacity ? kMinCapacity : capacity_;
  while (want - live < n) {
    // Doubling cannot overflow for any size a caller may ask for (limits are at most 512 MiB);
    // guard anyway so a broken caller aborts instead of wrapping.
    if (want > (static_cast<size_t>(-1) >> 1)) {
      std::fprintf(stderr, "crabcache: buffer of %zu bytes requested\n", live + n);
      std::abort();
    }
    want *= 2;
  }
  char* block = static_cast<char*>(std::malloc(want));
  if (block == nullptr) {
    std::fprintf(stderr, "crabcache: out of memory allocating a %zu-byte buffer\n", want);
    std::abort();
  }
  if (live != 0) std::memcpy(block, data_ + begin_, live);
  std::free(data_);
  data_ = block;
  begin_ = 0;
  end_ = live;
  capacity_ = want;
}

}  // namespace crabcache::fastpath
