// Fast path wire protocol v1: a pure, incremental parser and the encoders.
//
// Grammar (ABNF-like; every integer is little-endian; docs/protocol.md has examples):
//
//   request  = ping / put / get / del / expire / stats / auth / ttl
//   ping     = %x01
//   put      = %x02 key value ttl-opt
//   get      = %x03 key
//   del      = %x04 key
//   expire   = %x05 key seconds
//   stats    = %x06
//   auth     = %x07 token                      ; extension
//   ttl      = %x08 key                        ; extension
//   key      = u32:len byte*len                ; len <= max_key_bytes   (default 64 KiB)
//   value    = u32:len byte*len                ; len <= max_value_bytes (default 1 MiB)
//   token    = u32:len byte*len                ; len <= kMaxTokenBytes  (4 KiB)
//   ttl-opt  = %x00 / %x01 seconds             ; any other flag byte is malformed
//   seconds  = u64                             ; 0 expires the key at once
//
//   reply    = ok / pong / null / error / value-r / stats-r / int-r
//   ok       = %x10
//   pong     = %x11
//   null     = %x12                            ; GET miss; DEL or EXPIRE of a missing key
//   error    = %x13 u32:len utf8*len
//   value-r  = %x14 u32:len byte*len
//   stats-r  = %x15 u32:len json*len
//   int-r    = %x16 i64                        ; TTL: ms left, -1 no expiry, -2 missing
//
// Limits: both size limits are configurable up to kMaxConfigurableBytes (512 MiB). The parser
// rejects a length as soon as its four bytes are in, before anything that length sizes is
// buffered or allocated. Seconds convert to core milliseconds saturating (never wrapping), so a
// huge TTL means "practically never".
//
// Nothing here does I/O or allocates except the encoders, which append to a caller's Buffer.
#ifndef CRABCACHE_FASTPATH_CODEC_H_
#define CRABCACHE_FASTPATH_CODEC_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/command.h"
#include "fastpath/buffer.h"

namespace crabcache::fastpath {

enum class Opcode : uint8_t {
  kPing = 0x01,
  kPut = 0x02,
  kGet = 0x03,
  kDel = 0x04,
  kExpire = 0x05,
  kStats = 0x06,
  kAuth = 0x07,
  kTtl = 0x08,
};

enum class ReplyType : uint8_t {
  kOk = 0x10,
  kPong = 0x11,
  kNull = 0x12,
  kError = 0x13,
  kValue = 0x14,
  kStats = 0x15,
  kInt = 0x16,
};

inline constexpr size_t kMaxConfigurableBytes = size_t{512} << 20;
inline constexpr size_t kMaxTokenBytes = 4096;

struct Limits {
  size_t max_key_bytes = 64 * 1024;
  size_t max_value_bytes = 1024 * 1024;
};

// Why a frame is malformed. The names are the `reason` label of the protocol error metric.
enum class ParseError : uint8_t {
  kUnknownOpcode = 0,
  kBadTtlFlag = 1,
  kKeyTooLong = 2,
  kValueTooLong = 3,
  kTokenTooLong = 4,
};
inline constexpr size_t kNumParseErrors = 5;
// "unknown_opcode", "bad_ttl_flag", "key_too_long", "value_too_long", "token_too_long".
std::string_view ParseErrorName(ParseError error);

// One request frame. For everything but AUTH, `command` is what the executor runs; its key and
// value are views into the parsed input. `ttl_seconds` keeps the wire value (PUT with flag 1,
// EXPIRE) from which command.ttl_ms was derived, so the frame re-encodes byte for byte.
struct Request {
  Opcode op = Opcode::kPing;
  core::Command command;
  std::string_view token;  // kAuth only.
  uint64_t ttl_seconds = 0;
};

struct ParseResult {
  enum class Status : uint8_t { kFrame, kNeedMore, kError };
  Status status = Status::kNeedMore;
  // kFrame: the frame's size in bytes.
  size_t consumed = 0;
  // kNeedMore: the whole frame's size if the lengths read so far fix it, else a lower bound;
  // always > input.size(). A buffering hint: it never exceeds the largest valid frame.
  size_t needed = 0;
  // kError: what is wrong and the offending number (opcode, flag byte or length).
  ParseError error = ParseError::kUnknownOpcode;
  uint64_t detail = 0;
  Request request;  // kFrame only.
};

// Parses the frame at the start of `input`. Pure: looks only at `input`, allocates nothing.
// Incremental: a prefix of a valid frame gives kNeedMore, and once a frame is complete the same
// call gives it whatever follows; an error is reported as soon as the bytes that prove it are in.
ParseResult Parse(std::string_view input, const Limits& limits);

// The ERROR reply text for a malformed frame, e.g. "INVALID_ARGUMENT: key length 70000 exceeds
// max_key_bytes (65536)". Not on the hot path.
std::string ParseErrorMessage(const ParseResult& result, const Limits& limits);

// Wire seconds to core milliseconds, saturating at UINT64_MAX.
constexpr uint64_t SecondsToMillis(uint64_t seconds) {
  return seconds > UINT64_MAX / 1000 ? UINT64_MAX : seconds * 1000;
}

// ---- Request encoders (client side; also the fuzz target's re-encoder). ----
void EncodePing(Buffer* out);
// ttl_seconds: nullopt sends flag 0 (no expiry).
void EncodePut(Buffer* out, std::string_view key, std::string_view value,
               std::optional<uint64_t> ttl_seconds = std::nullopt);
void EncodeGet(Buffer* out, std::string_view key);
void EncodeDel(Buffer* out, std::string_view key);
void EncodeExpire(Buffer* out, std::string_view key, uint64_t seconds);
void EncodeStatsRequest(Buffer* out);
void EncodeAuth(Buffer* out, std::string_view token);
void EncodeTtl(Buffer* out, std::string_view key);
// Any parsed request, back into its exact bytes.
void EncodeRequest(const Request& request, Buffer* out);

// ---- Reply encoders (server side). ----
void EncodeOk(Buffer* out);
void EncodePong(Buffer* out);
void EncodeNull(Buffer* out);
void EncodeError(Buffer* out, std::string_view message);
void EncodeValue(Buffer* out, std::string_view value);
void EncodeStatsReply(Buffer* out, std::string_view json);
void EncodeInt(Buffer* out, int64_t value);

// The one mapping from core results to replies (docs/architecture.md's table):
//   kOk -> OK, kPong -> PONG, kHit -> VALUE, kMiss and kNotFound -> NULL, kTtl -> INT,
//   kStats -> STATS, kError -> ERROR "<CANONICAL_CODE>: <message>".
void EncodeResult(const core::Result& result, Buffer* out);

// The header of a VALUE, ERROR or STATS reply: type byte and u32 length. The longest reply to a
// GET is max_value_bytes + kReplyHeaderBytes.
inline constexpr size_t kReplyHeaderBytes = 5;

// A core::ResultSink that encodes each result straight into an output buffer, so a GET hit is
// copied exactly once (under the shard lock, into the output).
//
// Backpressure: once the buffer holds `stop_at` bytes or more after a result, the encoder asks
// the executor to stop the batch there (core::ResultSink::RequestStop); the caller keeps the
// frames that did not run for later. So a batch adds at most one reply past `stop_at`, however
// many frames it was given. Every result the executor delivers is encoded.
//
// Thread-safety: none; one batch at a time. `out` is not owned and must outlive the sink's use.
class ReplyEncoder final : public core::ResultSink {
 public:
  ReplyEncoder() = default;
  void Reset(Buffer* out, size_t stop_at) {
    out_ = out;
    stop_at_ = stop_at;
    ClearStop();
  }
  void OnResult(const core::Result& result) override {
    EncodeResult(result, out_);
    if (out_->size() >= stop_at_) RequestStop();
  }

 private:
  Buffer* out_ = nullptr;
  size_t stop_at_ = SIZE_MAX;
};

// ---- Reply parser (client side). ----

// One reply. `bytes` (ERROR, VALUE, STATS) views the parsed input.
struct Reply {
  ReplyType type = ReplyType::kOk;
  std::string_view bytes;
  int64_t integer = 0;  // kInt only.
};

struct ReplyParseResult {
  enum class Status : uint8_t { kReply, kNeedMore, kError };
  Status status = Status::kNeedMore;
  size_t consumed = 0;     // kReply.
  size_t needed = 0;       // kNeedMore: as in ParseResult.
  Reply reply;             // kReply.
  std::string_view error;  // kError: "unknown reply type" or "reply longer than the limit".
};

// Parses the reply at the start of `input`; a length above `max_bytes` is an error.
ReplyParseResult ParseReply(std::string_view input, size_t max_bytes);

// Encodes a parsed reply back into its bytes (tests and the fuzz target).
void EncodeReply(const Reply& reply, Buffer* out);

}  // namespace crabcache::fastpath

#endif  // CRABCACHE_FASTPATH_CODEC_H_
