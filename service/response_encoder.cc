// BatchResponse on the wire (field numbers from proto/crabcache/v1/cache.proto), as protobuf
// serializes it: fields in number order, each omitted when it holds its proto3 default.
//
//   BatchResponse := [0x08 varint id]  (0x12 length Result)*
//   Result        := [0x08 varint code] [0x12 length value] [0x18 varint ttl_ms as uint64]
//                    [0x22 length error]
#include "service/response_encoder.h"

#include <grpcpp/support/slice.h>

#include <algorithm>
#include <cstring>

#include "absl/types/span.h"
#include "service/translate.h"
#include "service/wire_format.h"

namespace crabcache::service {
namespace {

using wire::kLengthDelimited;
using wire::kVarint;
using wire::MakeTag;

// Chunks are large enough to be refcounted slices (above GRPC_SLICE_INLINED_SIZE) and, unless a
// single write needs more, at most kMaxChunk.
constexpr size_t kMinChunk = 256;
constexpr size_t kMaxChunk = 1 << 20;

}  // namespace

SliceWriter::~SliceWriter() { Release(); }

void SliceWriter::Release() {
  for (grpc_slice& slice : done_) grpc_slice_unref(slice);
  done_.clear();
  done_bytes_ = 0;
  if (chunk_start_ != nullptr) grpc_slice_unref(chunk_);
  chunk_start_ = pos_ = limit_ = nullptr;
}

void SliceWriter::Reset(size_t expected_bytes) {
  Release();
  next_chunk_bytes_ = std::clamp(expected_bytes, kMinChunk, kMaxChunk);
}

void SliceWriter::CloseChunk() {
  if (chunk_start_ == nullptr) return;
  const size_t used = static_cast<size_t>(pos_ - chunk_start_);
  if (used == 0) {
    grpc_slice_unref(chunk_);
  } else {
    done_.push_back(grpc_slice_sub_no_ref(chunk_, 0, used));  // Keeps the chunk's reference.
    done_bytes_ += used;
  }
  chunk_start_ = pos_ = limit_ = nullptr;
}

void SliceWriter::NewChunk(size_t at_least) {
  CloseChunk();
  const size_t bytes = std::max({at_least, next_chunk_bytes_, kMinChunk});
  chunk_ = grpc_slice_malloc(bytes);
  chunk_start_ = pos_ = GRPC_SLICE_START_PTR(chunk_);
  limit_ = pos_ + bytes;
  next_chunk_bytes_ = std::min(bytes * 2, kMaxChunk);
}

void SliceWriter::Append(std::string_view bytes) {
  while (!bytes.empty()) {
    if (pos_ == limit_) NewChunk(bytes.size());
    const size_t n = std::min(bytes.size(), static_cast<size_t>(limit_ - pos_));
    std::memcpy(pos_, bytes.data(), n);
    pos_ += n;
    bytes.remove_prefix(n);
  }
}

size_t SliceWriter::Finish(grpc::ByteBuffer* out) {
  CloseChunk();
  const size_t total = done_bytes_;
  absl::InlinedVector<grpc::Slice, 4> slices;
  for (grpc_slice& slice : done_) slices.emplace_back(slice, grpc::Slice::STEAL_REF);
  done_.clear();
  done_bytes_ = 0;
  grpc::ByteBuffer buffer(slices.data(), slices.size());  // Adds its own references.
  out->Swap(&buffer);
  return total;
}

void BatchResponseEncoder::Begin(uint64_t id, SliceWriter* writer) {
  writer_ = writer;
  if (id == 0) return;
  uint8_t* p = writer_->Reserve(1 + 10);
  *p++ = MakeTag(1, kVarint);
  writer_->Commit(wire::WriteVarint(p, id));
}

void BatchResponseEncoder::OnResult(const core::Result& result) {
  const auto code = static_cast<uint32_t>(ToProtoCode(result));
  switch (result.code) {
    case core::ResultCode::kHit:
      if (result.value.size() <= kMaxShortValue) {
        AddShortResult(code, result.value);
        break;
      }
      AddResult(code, result.value, 0, {});
      break;
    case core::ResultCode::kStats:
      AddResult(code, result.value, 0, {});
      break;
    case core::ResultCode::kTtl:
      AddResult(code, {}, result.ttl_ms, {});
      break;
    case core::ResultCode::kError:
      error_ = ErrorText(result);
      AddResult(code, {}, 0, error_);
      break;
    default:
      AddShortResult(code, {});
      break;
  }
}

// The common shapes in one contiguous write: a code alone (OK, MISS...) or a HIT whose value is
// short enough for every length to take one byte.
void BatchResponseEncoder::AddShortResult(uint32_t code, std::string_view value) {
  static_assert(crabcache::v1::Code_MAX < 0x80, "one-byte codes");
  const size_t n = value.size();  // <= kMaxShortValue
  uint8_t* p = writer_->Reserve(6 + n);
  p[0] = MakeTag(2, kLengthDelimited);
  p[1] = static_cast<uint8_t>(n == 0 ? 2 : 4 + n);
  p[2] = MakeTag(1, kVarint);
  p[3] = static_cast<uint8_t>(code);
  if (n == 0) {
    writer_->Commit(p + 4);
    return;
  }
  p[4] = MakeTag(2, kLengthDelimited);
  p[5] = static_cast<uint8_t>(n);
  std::memcpy(p + 6, value.data(), n);
  writer_->Commit(p + 6 + n);
}

void BatchResponseEncoder::AddNoOperation() {
  AddResult(static_cast<uint32_t>(crabcache::v1::ERROR), {}, 0, kNoOperationError);
}

void BatchResponseEncoder::AddResult(uint32_t code, std::string_view value, int64_t ttl_ms,
                                     std::string_view error) {
  const auto ttl = static_cast<uint64_t>(ttl_ms);  // int64: negative values take 10 bytes.
  size_t length = code != 0 ? 1 + wire::VarintSize(code) : 0;
  if (!value.empty()) length += 1 + wire::VarintSize(value.size()) + value.size();
  if (ttl != 0) length += 1 + wire::VarintSize(ttl);
  if (!error.empty()) length += 1 + wire::VarintSize(error.size()) + error.size();

  // Tag, length, code, value tag and length: at most 1 + 10 + 1 + 5 + 1 + 10 bytes.
  uint8_t* p = writer_->Reserve(SliceWriter::kMaxReserve);
  *p++ = MakeTag(2, kLengthDelimited);
  p = wire::WriteVarint(p, length);
  if (code != 0) {
    *p++ = MakeTag(1, kVarint);
    p = wire::WriteVarint(p, code);
  }
  if (!value.empty()) {
    *p++ = MakeTag(2, kLengthDelimited);
    writer_->Commit(wire::WriteVarint(p, value.size()));
    writer_->Append(value);
    p = writer_->Reserve(SliceWriter::kMaxReserve);
  }
  if (ttl != 0) {
    *p++ = MakeTag(3, kVarint);
    p = wire::WriteVarint(p, ttl);
  }
  if (!error.empty()) {
    *p++ = MakeTag(4, kLengthDelimited);
    writer_->Commit(wire::WriteVarint(p, error.size()));
    writer_->Append(error);
    return;
  }
  writer_->Commit(p);
}

void ExecuteDecoded(const core::Executor& executor, const DecodedBatch& batch,
                    BatchResponseEncoder& encoder) {
  const absl::Span<const core::Command> commands(batch.commands);
  size_t done = 0;  // Commands already run.
  for (size_t i = 0; i < batch.no_op_positions.size(); ++i) {
    // The commands with an operation before this position: all of them but the i no-ops.
    const size_t before = batch.no_op_positions[i] - i;
    if (before > done) {
      executor.Execute(core::Frontend::kGrpc, commands.subspan(done, before - done), encoder);
      done = before;
    }
    encoder.AddNoOperation();
  }
  if (commands.size() > done) {
    executor.Execute(core::Frontend::kGrpc, commands.subspan(done), encoder);
  }
}

}  // namespace crabcache::service
