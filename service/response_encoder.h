// Encodes crabcache.v1.BatchResponse straight from core results into gRPC slices: a GET hit's
// value is copied once, from the store into the slice gRPC sends.
//
// The bytes are exactly what protobuf's serializer produces for the BatchResponse that the typed
// path (service::ExecuteBatch, service/translate.h) builds: fields in number order, minimal
// varints, proto3 defaults omitted (an OK result with no value is its code alone). Tests compare
// the two byte for byte (service/batch_codec_differential_test.cc, the translator fuzz target).
#ifndef CRABCACHE_SERVICE_RESPONSE_ENCODER_H_
#define CRABCACHE_SERVICE_RESPONSE_ENCODER_H_

#include <grpc/slice.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "core/command.h"
#include "core/executor.h"
#include "service/batch_decoder.h"

namespace crabcache::service {

// An append-only byte sink made of refcounted gRPC slices, handed to gRPC without a copy: gRPC
// holds its own references for as long as the transport needs the bytes, so the writer can be
// reused at once. Chunks are allocated as needed, the first one of the size the caller expects.
//
// Not thread-safe. Movable only by being reset; not copyable.
class SliceWriter {
 public:
  // Bytes that Reserve can always provide contiguously.
  static constexpr size_t kMaxReserve = 128;

  SliceWriter() = default;
  ~SliceWriter();
  SliceWriter(const SliceWriter&) = delete;
  SliceWriter& operator=(const SliceWriter&) = delete;

  // Starts empty, the first chunk sized for `expected_bytes`. Drops anything not yet finished.
  void Reset(size_t expected_bytes);

  // Room for `n` contiguous bytes (n <= kMaxReserve) at the returned pointer; say how many were
  // used with Commit.
  uint8_t* Reserve(size_t n) {
    if (static_cast<size_t>(limit_ - pos_) < n) NewChunk(n);
    return pos_;
  }
  // REQUIRES: `end` lies within the room the last Reserve returned.
  void Commit(uint8_t* end) { pos_ = end; }

  void Append(std::string_view bytes);

  // Bytes written since Reset.
  size_t size() const { return done_bytes_ + static_cast<size_t>(pos_ - chunk_start_); }

  // Moves the bytes written into `out` (replacing its contents) and returns how many there are.
  // The writer is then empty until the next Reset.
  size_t Finish(grpc::ByteBuffer* out);

 private:
  void NewChunk(size_t at_least);
  void CloseChunk();
  void Release();

  absl::InlinedVector<grpc_slice, 4> done_;  // Full chunks, trimmed to what was written.
  size_t done_bytes_ = 0;
  size_t next_chunk_bytes_ = 0;
  grpc_slice chunk_{};  // The chunk being written; chunk_.refcount == nullptr when none.
  uint8_t* chunk_start_ = nullptr;
  uint8_t* pos_ = nullptr;
  uint8_t* limit_ = nullptr;
};

// A ResultSink that appends each result to a BatchResponse being encoded in a SliceWriter.
//
// Usage per batch: Begin(id, &writer), then one OnResult or AddNoOperation per command in order
// (ExecuteDecoded does this), then writer.Finish(). Not thread-safe; one batch at a time.
// OnResult runs under a shard lock (core/command.h): it only copies bytes.
class BatchResponseEncoder final : public core::ResultSink {
 public:
  // REQUIRES: `writer` is freshly Reset; it must outlive the batch.
  void Begin(uint64_t id, SliceWriter* writer);
  void OnResult(const core::Result& result) override;
  // The ERROR result of a command without an operation.
  void AddNoOperation();

 private:
  // A HIT value this short has one-byte lengths and fits one Reserve with its header.
  static constexpr size_t kMaxShortValue = SliceWriter::kMaxReserve - 6;

  // One Result message: code, value, ttl_ms and error, each omitted when zero or empty.
  void AddResult(uint32_t code, std::string_view value, int64_t ttl_ms, std::string_view error);
  // The same for a non-zero code below 128, a value of at most kMaxShortValue bytes, no ttl_ms
  // and no error.
  void AddShortResult(uint32_t code, std::string_view value);

  SliceWriter* writer_ = nullptr;
  std::string error_;  // Scratch for error texts (rare), reused.
};

// Runs a decoded batch in request order: the commands through `executor` in as few Execute
// calls as possible (one when every command has an operation), the ERROR result of each command
// without an operation in its place, all into `encoder` (already begun).
void ExecuteDecoded(const core::Executor& executor, const DecodedBatch& batch,
                    BatchResponseEncoder& encoder);

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_RESPONSE_ENCODER_H_
