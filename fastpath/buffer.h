// A growable byte buffer for socket input and output.
#ifndef CRABCACHE_FASTPATH_BUFFER_H_
#define CRABCACHE_FASTPATH_BUFFER_H_

#include <cstddef>
#include <cstring>
#include <string_view>

namespace crabcache::fastpath {

// Bytes in [begin, end) of one malloc'd block: the front is consumed (Consume), the back grows
// (Reserve + Commit, or Append). Unlike std::string, growing never zero-fills, and consuming from
// the front is O(1); the live bytes move to the front only when the block needs room.
//
// Memory: nothing is allocated until the first Reserve/Append; Release frees the block. Growth is
// geometric, so appending n bytes one reply at a time costs O(n) overall. Allocation failure
// aborts the process with a message (callers bound every size they ask for first).
//
// Thread-safety: none; a buffer belongs to one thread at a time. Movable, not copyable.
class Buffer {
 public:
  Buffer() = default;
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  const char* data() const { return data_ + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  size_t capacity() const { return capacity_; }
  std::string_view view() const { return {data(), size()}; }

  // Makes room for at least `n` more bytes after the live ones and returns where they go.
  // Invalidates pointers into the buffer.
  char* Reserve(size_t n) {
    if (capacity_ - end_ < n) Grow(n);
    return data_ + end_;
  }
  // Writable bytes after the live ones without moving or growing.
  size_t tail_room() const { return capacity_ - end_; }
  char* tail() { return data_ + end_; }
  // Marks `n` bytes written at tail() as live. REQUIRES: n <= tail_room().
  void Commit(size_t n) { end_ += n; }

  void Append(const void* bytes, size_t n) {
    std::memcpy(Reserve(n), bytes, n);
    end_ += n;
  }
  void Append(std::string_view s) { Append(s.data(), s.size()); }
  void AppendByte(char c) {
    *Reserve(1) = c;
    ++end_;
  }

  // Drops `n` bytes from the front. REQUIRES: n <= size().
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Drops every byte; keeps the block.
  void Clear() { begin_ = end_ = 0; }
  // Drops every byte and frees the block.
  void Release();
  void Swap(Buffer& other) noexcept;

 private:
  void Grow(size_t n);

  char* data_ = nullptr;
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t capacity_ = 0;
};

}  // namespace crabcache::fastpath

#endif  // CRABCACHE_FASTPATH_BUFFER_H_
