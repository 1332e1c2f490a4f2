// Protocol v1 codec; the grammar is at the top of codec.h.
#include "fastpath/codec.h"

#include <bit>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace crabcache::fastpath {
namespace {

// The wire is little-endian; on a little-endian host (every supported one) these are plain
// unaligned loads and stores.
static_assert(std::endian::native == std::endian::little ||
              std::endian::native == std::endian::big);

template <typename T>
T ByteSwap(T v) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  if constexpr (sizeof(T) == 4) {
    return static_cast<T>(__builtin_bswap32(static_cast<uint32_t>(v)));
  } else {
    return static_cast<T>(__builtin_bswap64(static_cast<uint64_t>(v)));
  }
}

template <typename T>
T LoadLe(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = ByteSwap(v);
  return v;
}

template <typename T>
void StoreLe(char* p, T v) {
  if constexpr (std::endian::native == std::endian::big) v = ByteSwap(v);
  std::memcpy(p, &v, sizeof(v));
}

// Frame sizes: opcode byte, u32 length, u64 seconds, ttl flag byte.
constexpr size_t kOp = 1;
constexpr size_t kLen = 4;
constexpr size_t kU64 = 8;
constexpr size_t kFlag = 1;
static_assert(kReplyHeaderBytes == kOp + kLen);

ParseResult NeedMore(size_t needed) {
  ParseResult r;
  r.status = ParseResult::Status::kNeedMore;
  r.needed = needed;
  return r;
}

ParseResult Fail(ParseError error, uint64_t detail) {
  ParseResult r;
  r.status = ParseResult::Status::kError;
  r.error = error;
  r.detail = detail;
  return r;
}

ParseResult Done(size_t consumed, Opcode op, const core::Command& command) {
  ParseResult r;
  r.status = ParseResult::Status::kFrame;
  r.consumed = consumed;
  r.request.op = op;
  r.request.command = command;
  return r;
}

// GET, DEL and TTL: opcode, key.
ParseResult ParseKeyFrame(std::string_view in, const Limits& limits, Opcode op) {
  if (in.size() < kOp + kLen) return NeedMore(kOp + kLen);
  const uint32_t key_len = LoadLe<uint32_t>(in.data() + kOp);
  if (key_len > limits.max_key_bytes) return Fail(ParseError::kKeyTooLong, key_len);
  const size_t total = kOp + kLen + key_len;
  if (in.size() < total) return NeedMore(total);
  const std::string_view key = in.substr(kOp + kLen, key_len);
  core::Command c = op == Opcode::kGet   ? core::Command::Get(key)
                    : op == Opcode::kDel ? core::Command::Delete(key)
                                         : core::Command::Ttl(key);
  return Done(total, op, c);
}

ParseResult ParseExpire(std::string_view in, const Limits& limits) {
  if (in.size() < kOp + kLen) return NeedMore(kOp + kLen + kU64);
  const uint32_t key_len = LoadLe<uint32_t>(in.data() + kOp);
  if (key_len > limits.max_key_bytes) return Fail(ParseError::kKeyTooLong, key_len);
  const size_t total = kOp + kLen + key_len + kU64;
  if (in.size() < total) return NeedMore(total);
  const uint64_t seconds = LoadLe<uint64_t>(in.data() + kOp + kLen + key_len);
  ParseResult r =
      Done(total, Opcode::kExpire,
           core::Command::Expire(in.substr(kOp + kLen, key_len), SecondsToMillis(seconds)));
  r.request.ttl_seconds = seconds;
  return r;
}

ParseResult ParsePut(std::string_view in, const Limits& limits) {
  constexpr size_t kSmallest = kOp + kLen + kLen + kFlag;
  if (in.size() < kOp + kLen) return NeedMore(kSmallest);
  const uint32_t key_len = LoadLe<uint32_t>(in.data() + kOp);
  if (key_len > limits.max_key_bytes) return Fail(ParseError::kKeyTooLong, key_len);
  const size_t value_len_at = kOp + kLen + key_len;
  if (in.size() < value_len_at + kLen) return NeedMore(value_len_at + kLen + kFlag);
  const uint32_t value_len = LoadLe<uint32_t>(in.data() + value_len_at);
  if (value_len > limits.max_value_bytes) return Fail(ParseError::kValueTooLong, value_len);
  const size_t flag_at = value_len_at + kLen + value_len;
  if (in.size() <= flag_at) return NeedMore(flag_at + kFlag);
  const uint8_t flag = static_cast<uint8_t>(in[flag_at]);
  if (flag > 1) return Fail(ParseError::kBadTtlFlag, flag);
  const std::string_view key = in.substr(kOp + kLen, key_len);
  const std::string_view value = in.substr(value_len_at + kLen, value_len);
  if (flag == 0) return Done(flag_at + kFlag, Opcode::kPut, core::Command::Set(key, value));
  const size_t total = flag_at + kFlag + kU64;
  if (in.size() < total) return NeedMore(total);
  const uint64_t seconds = LoadLe<uint64_t>(in.data() + flag_at + kFlag);
  ParseResult r =
      Done(total, Opcode::kPut, core::Command::SetWithTtl(key, value, SecondsToMillis(seconds)));
  r.request.ttl_seconds = seconds;
  return r;
}

ParseResult ParseAuth(std::string_view in) {
  if (in.size() < kOp + kLen) return NeedMore(kOp + kLen);
  const uint32_t len = LoadLe<uint32_t>(in.data() + kOp);
  if (len > kMaxTokenBytes) return Fail(ParseError::kTokenTooLong, len);
  const size_t total = kOp + kLen + len;
  if (in.size() < total) return NeedMore(total);
  ParseResult r = Done(total, Opcode::kAuth, core::Command::Ping());
  r.request.token = in.substr(kOp + kLen, len);
  return r;
}

// Writes the type byte and a u32 length, returns where the `len` payload bytes go.
char* BeginLengthPrefixed(Buffer* out, uint8_t type, size_t len) {
  char* p = out->Reserve(kOp + kLen + len);
  p[0] = static_cast<char>(type);
  StoreLe<uint32_t>(p + kOp, static_cast<uint32_t>(len));
  out->Commit(kOp + kLen + len);
  return p + kOp + kLen;
}

void AppendLengthPrefixed(Buffer* out, uint8_t type, std::string_view bytes) {
  char* p = BeginLengthPrefixed(out, type, bytes.size());
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
}

void AppendU64(Buffer* out, uint64_t v) {
  StoreLe<uint64_t>(out->Reserve(kU64), v);
  out->Commit(kU64);
}

void AppendLen(Buffer* out, size_t len) {
  StoreLe<uint32_t>(out->Reserve(kLen), static_cast<uint32_t>(len));
  out->Commit(kLen);
}

}  // namespace

std::string_view ParseErrorName(ParseError error) {
  switch (error) {
    case ParseError::kUnknownOpcode:
      return "unknown_opcode";
    case ParseError::kBadTtlFlag:
      return "bad_ttl_flag";
    case ParseError::kKeyTooLong:
      return "key_too_long";
    case ParseError::kValueTooLong:
      return "value_too_long";
    case ParseError::kTokenTooLong:
      return "token_too_long";
  }
  return "unknown";
}

ParseResult Parse(std::string_view in, const Limits& limits) {
  if (in.empty()) return NeedMore(kOp);
  const auto op = static_cast<Opcode>(static_cast<uint8_t>(in[0]));
  switch (op) {
    case Opcode::kGet:
    case Opcode::kDel:
    case Opcode::kTtl:
      return ParseKeyFrame(in, limits, op);
    case Opcode::kPut:
      return ParsePut(in, limits);
    case Opcode::kPing:
      return Done(kOp, op, core::Command::Ping());
    case Opcode::kStats:
      return Done(kOp, op, core::Command::Stats());
    case Opcode::kExpire:
      return ParseExpire(in, limits);
    case Opcode::kAuth:
      return ParseAuth(in);
  }
  return Fail(ParseError::kUnknownOpcode, static_cast<uint8_t>(in[0]));
}

std::string ParseErrorMessage(const ParseResult& r, const Limits& limits) {
  const std::string prefix = absl::StatusCodeToString(absl::StatusCode::kInvalidArgument) + ": ";
  switch (r.error) {
    case ParseError::kUnknownOpcode:
      return absl::StrCat(prefix, absl::StrFormat("unknown opcode 0x%02x", r.detail),
                          r.detail == '*' ? " (this port speaks the CrabCache binary protocol v1, "
                                            "not RESP)"
                                          : "");
    case ParseError::kBadTtlFlag:
      return absl::StrCat(prefix, absl::StrFormat("ttl flag 0x%02x is not 0 or 1", r.detail));
    case ParseError::kKeyTooLong:
      return absl::StrCat(prefix, "key length ", r.detail, " exceeds max_key_bytes (",
                          limits.max_key_bytes, ")");
    case ParseError::kValueTooLong:
      return absl::StrCat(prefix, "value length ", r.detail, " exceeds max_value_bytes (",
                          limits.max_value_bytes, ")");
    case ParseError::kTokenTooLong:
      return absl::StrCat(prefix, "auth token length ", r.detail, " exceeds ", kMaxTokenBytes);
  }
  return prefix + "malformed frame";
}

// ---- Requests ----

void EncodePing(Buffer* out) { out->AppendByte(static_cast<char>(Opcode::kPing)); }

void EncodePut(Buffer* out, std::string_view key, std::string_view value,
               std::optional<uint64_t> ttl_seconds) {
  AppendLengthPrefixed(out, static_cast<uint8_t>(Opcode::kPut), key);
  AppendLen(out, value.size());
  out->Append(value);
  out->AppendByte(ttl_seconds.has_value() ? 1 : 0);
  if (ttl_seconds.has_value()) AppendU64(out, *ttl_seconds);
}

void EncodeGet(Buffer* out, std::string_view key) {
  AppendLengthPrefixed(out, static_cast<uint8_t>(Opcode::kGet), key);
}

void EncodeDel(Buffer* out, std::string_view key) {
  AppendLengthPrefixed(out, static_cast<uint8_t>(Opcode::kDel), key);
}

void EncodeExpire(Buffer* out, std::string_view key, uint64_t seconds) {
  AppendLengthPrefixed(out, static_cast<uint8_t>(Opcode::kExpire), key);
  AppendU64(out, seconds);
}

void EncodeStatsRequest(Buffer* out) { out->AppendByte(static_cast<char>(Opcode::kStats)); }

void EncodeAuth(Buffer* out, std::string_view token) {
  AppendLengthPrefixed(out, static_cast<uint8_t>(Opcode::kAuth), token);
}

void EncodeTtl(Buffer* out, std::string_view key) {
  AppendLengthPrefixed(out, static_cast<uint8_t>(Opcode::kTtl), key);
}

void EncodeRequest(const Request& r, Buffer* out) {
  const core::Command& c = r.command;
  switch (r.op) {
    case Opcode::kPing:
      return EncodePing(out);
    case Opcode::kPut:
      return EncodePut(out, c.key, c.value,
                       c.has_ttl ? std::optional<uint64_t>(r.ttl_seconds) : std::nullopt);
    case Opcode::kGet:
      return EncodeGet(out, c.key);
    case Opcode::kDel:
      return EncodeDel(out, c.key);
    case Opcode::kExpire:
      return EncodeExpire(out, c.key, r.ttl_seconds);
    case Opcode::kStats:
      return EncodeStatsRequest(out);
    case Opcode::kAuth:
      return EncodeAuth(out, r.token);
    case Opcode::kTtl:
      return EncodeTtl(out, c.key);
  }
}

// ---- Replies ----

void EncodeOk(Buffer* out) { out->AppendByte(static_cast<char>(ReplyType::kOk)); }
void EncodePong(Buffer* out) { out->AppendByte(static_cast<char>(ReplyType::kPong)); }
void EncodeNull(Buffer* out) { out->AppendByte(static_cast<char>(ReplyType::kNull)); }

void EncodeError(Buffer* out, std::string_view message) {
  AppendLengthPrefixed(out, static_cast<uint8_t>(ReplyType::kError), message);
}

void EncodeValue(Buffer* out, std::string_view value) {
  AppendLengthPrefixed(out, static_cast<uint8_t>(ReplyType::kValue), value);
}

void EncodeStatsReply(Buffer* out, std::string_view json) {
  AppendLengthPrefixed(out, static_cast<uint8_t>(ReplyType::kStats), json);
}

void EncodeInt(Buffer* out, int64_t value) {
  char* p = out->Reserve(kOp + kU64);
  p[0] = static_cast<char>(ReplyType::kInt);
  StoreLe<int64_t>(p + kOp, value);
  out->Commit(kOp + kU64);
}

void EncodeResult(const core::Result& r, Buffer* out) {
  switch (r.code) {
    case core::ResultCode::kOk:
      return EncodeOk(out);
    case core::ResultCode::kPong:
      return EncodePong(out);
    case core::ResultCode::kHit:
      return EncodeValue(out, r.value);
    case core::ResultCode::kMiss:
    case core::ResultCode::kNotFound:
      return EncodeNull(out);
    case core::ResultCode::kTtl:
      return EncodeInt(out, r.ttl_ms);
    case core::ResultCode::kStats:
      return EncodeStatsReply(out, r.value);
    case core::ResultCode::kError: {
      // Same text as the gRPC front end's Result.error: "<CANONICAL_CODE>: <message>".
      const std::string code = absl::StatusCodeToString(r.error);
      char* p = BeginLengthPrefixed(out, static_cast<uint8_t>(ReplyType::kError),
                                    code.size() + 2 + r.value.size());
      std::memcpy(p, code.data(), code.size());
      std::memcpy(p + code.size(), ": ", 2);
      if (!r.value.empty()) std::memcpy(p + code.size() + 2, r.value.data(), r.value.size());
      return;
    }
  }
}

// ---- Reply parser ----

ReplyParseResult ParseReply(std::string_view in, size_t max_bytes) {
  ReplyParseResult r;
  if (in.empty()) {
    r.needed = kOp;
    return r;
  }
  const auto type = static_cast<ReplyType>(static_cast<uint8_t>(in[0]));
  r.reply.type = type;
  switch (type) {
    case ReplyType::kOk:
    case ReplyType::kPong:
    case ReplyType::kNull:
      r.status = ReplyParseResult::Status::kReply;
      r.consumed = kOp;
      return r;
    case ReplyType::kInt:
      if (in.size() < kOp + kU64) {
        r.needed = kOp + kU64;
        return r;
      }
      r.status = ReplyParseResult::Status::kReply;
      r.consumed = kOp + kU64;
      r.reply.integer = LoadLe<int64_t>(in.data() + kOp);
      return r;
    case ReplyType::kError:
    case ReplyType::kValue:
    case ReplyType::kStats: {
      if (in.size() < kOp + kLen) {
        r.needed = kOp + kLen;
        return r;
      }
      const uint32_t len = LoadLe<uint32_t>(in.data() + kOp);
      if (len > max_bytes) {
        r.status = ReplyParseResult::Status::kError;
        r.error = "reply longer than the limit";
        return r;
      }
      const size_t total = kOp + kLen + len;
      if (in.size() < total) {
        r.needed = total;
        return r;
      }
      r.status = ReplyParseResult::Status::kReply;
      r.consumed = total;
      r.reply.bytes = in.substr(kOp + kLen, len);
      return r;
    }
  }
  r.status = ReplyParseResult::Status::kError;
  r.error = "unknown reply type";
  return r;
}

void EncodeReply(const Reply& reply, Buffer* out) {
  switch (reply.type) {
    case ReplyType::kOk:
    case ReplyType::kPong:
    case ReplyType::kNull:
      return out->AppendByte(static_cast<char>(reply.type));
    case ReplyType::kInt:
      return EncodeInt(out, reply.integer);
    case ReplyType::kError:
    case ReplyType::kValue:
    case ReplyType::kStats:
      return AppendLengthPrefixed(out, static_cast<uint8_t>(reply.type), reply.bytes);
  }
}

}  // namespace crabcache::fastpath
