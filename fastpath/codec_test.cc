#include "fastpath/codec.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crabcache::fastpath {
namespace {

using ::testing::HasSubstr;
using Status = ParseResult::Status;

std::string U32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string U64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string Op(uint8_t b) { return std::string(1, static_cast<char>(b)); }

template <typename F>
std::string Enc(F&& f) {
  Buffer b;
  f(&b);
  return std::string(b.view());
}

// An owned summary of a parsed request, comparable across parses of differently split input.
struct Parsed {
  Opcode op;
  core::CommandId id;
  std::string key, value, token;
  uint64_t ttl_ms;
  bool has_ttl;
  uint64_t ttl_seconds;
  std::string wire;  // The bytes the frame was parsed from.

  bool operator==(const Parsed& o) const {
    return std::tie(op, id, key, value, token, ttl_ms, has_ttl, ttl_seconds, wire) ==
           std::tie(o.op, o.id, o.key, o.value, o.token, o.ttl_ms, o.has_ttl, o.ttl_seconds,
                    o.wire);
  }
};

struct StreamResult {
  std::vector<Parsed> frames;
  std::optional<ParseError> error;
  uint64_t error_detail = 0;
  size_t buffered = 0;  // Bytes of an incomplete frame left at the end.

  bool operator==(const StreamResult& o) const {
    return frames == o.frames && error == o.error && error_detail == o.error_detail &&
           buffered == o.buffered;
  }
};

// Delivers `input` in chunks ending at `cuts` (then the rest), as short reads would, parsing
// every complete frame after each chunk like the event loop does.
StreamResult ParseChunks(std::string_view input, std::vector<size_t> cuts, const Limits& limits) {
  cuts.push_back(input.size());
  StreamResult out;
  std::string buf;
  size_t delivered = 0;
  for (size_t cut : cuts) {
    buf.append(input.substr(delivered, cut - delivered));
    delivered = cut;
    size_t pos = 0;
    for (;;) {
      const std::string_view rest = std::string_view(buf).substr(pos);
      ParseResult r = Parse(rest, limits);
      if (r.status == Status::kNeedMore) {
        EXPECT_GT(r.needed, rest.size());
        break;
      }
      if (r.status == Status::kError) {
        out.error = r.error;
        out.error_detail = r.detail;
        return out;
      }
      EXPECT_GT(r.consumed, 0u);
      EXPECT_LE(r.consumed, rest.size());
      const core::Command& c = r.request.command;
      out.frames.push_back(Parsed{r.request.op, c.id, std::string(c.key), std::string(c.value),
                                  std::string(r.request.token), c.ttl_ms, c.has_ttl,
                                  r.request.ttl_seconds, std::string(rest.substr(0, r.consumed))});
      pos += r.consumed;
    }
    buf.erase(0, pos);
  }
  out.buffered = buf.size();
  return out;
}

// STYLE rule 2: the same frames (or the same error) whatever the read boundaries.
void ExpectSplitInvariant(std::string_view input, const Limits& limits = {}) {
  const StreamResult whole = ParseChunks(input, {}, limits);
  for (size_t k = 0; k <= input.size(); ++k) {
    EXPECT_EQ(ParseChunks(input, {k}, limits), whole) << "split at " << k;
  }
  std::vector<size_t> every;
  for (size_t k = 1; k < input.size(); ++k) every.push_back(k);
  EXPECT_EQ(ParseChunks(input, every, limits), whole) << "one byte at a time";
}

ParseResult ParseOne(std::string_view in, const Limits& limits = {}) { return Parse(in, limits); }

// ---- Every request ----

TEST(CodecTest, PingAndStatsAreOneByte) {
  ParseResult r = ParseOne("\x01");
  ASSERT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.consumed, 1u);
  EXPECT_EQ(r.request.op, Opcode::kPing);
  EXPECT_EQ(r.request.command.id, core::CommandId::kPing);
  r = ParseOne("\x06");
  ASSERT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.request.command.id, core::CommandId::kStats);
  EXPECT_EQ(Enc(EncodePing), "\x01");
  EXPECT_EQ(Enc(EncodeStatsRequest), "\x06");
}

TEST(CodecTest, PutWithoutTtl) {
  const std::string wire = Op(0x02) + U32(3) + "key" + U32(5) + "value" + Op(0);
  EXPECT_EQ(Enc([](Buffer* b) { EncodePut(b, "key", "value"); }), wire);
  const std::string input = wire + "trailing";
  ParseResult r = ParseOne(input);
  ASSERT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(r.request.op, Opcode::kPut);
  EXPECT_EQ(r.request.command.id, core::CommandId::kSet);
  EXPECT_EQ(r.request.command.key, "key");
  EXPECT_EQ(r.request.command.value, "value");
  EXPECT_FALSE(r.request.command.has_ttl);
}

TEST(CodecTest, PutWithTtlConvertsSecondsToMillis) {
  const std::string wire = Op(0x02) + U32(1) + "k" + U32(1) + "v" + Op(1) + U64(90);
  EXPECT_EQ(Enc([](Buffer* b) { EncodePut(b, "k", "v", 90); }), wire);
  ParseResult r = ParseOne(wire);
  ASSERT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_TRUE(r.request.command.has_ttl);
  EXPECT_EQ(r.request.command.ttl_ms, 90'000u);
  EXPECT_EQ(r.request.ttl_seconds, 90u);
}

TEST(CodecTest, PutWithZeroTtlKeepsTheFlag) {
  const std::string wire = Op(0x02) + U32(1) + "k" + U32(0) + Op(1) + U64(0);
  ParseResult r = ParseOne(wire);
  ASSERT_EQ(r.status, Status::kFrame);
  EXPECT_TRUE(r.request.command.has_ttl);  // Expires at once, unlike "no TTL".
  EXPECT_EQ(r.request.command.ttl_ms, 0u);
  EXPECT_EQ(r.request.command.value, "");
}

TEST(CodecTest, HugeTtlSaturatesInsteadOfWrapping) {
  for (uint64_t seconds :
       {std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint64_t>::max() / 1000 + 1}) {
    ParseResult r = ParseOne(Op(0x05) + U32(1) + "k" + U64(seconds));
    ASSERT_EQ(r.status, Status::kFrame);
    EXPECT_EQ(r.request.command.ttl_ms, std::numeric_limits<uint64_t>::max()) << seconds;
    EXPECT_EQ(r.request.ttl_seconds, seconds);
  }
  constexpr uint64_t kLargestExact = std::numeric_limits<uint64_t>::max() / 1000;
  EXPECT_EQ(SecondsToMillis(kLargestExact), kLargestExact * 1000);
}

TEST(CodecTest, KeyFrames) {
  struct Case {
    uint8_t op;
    core::CommandId id;
    void (*encode)(Buffer*, std::string_view);
  };
  for (const Case& c : {Case{0x03, core::CommandId::kGet, &EncodeGet},
                        Case{0x04, core::CommandId::kDelete, &EncodeDel},
                        Case{0x08, core::CommandId::kTtl, &EncodeTtl}}) {
    const std::string wire = Op(c.op) + U32(4) + "abcd";
    EXPECT_EQ(Enc([&](Buffer* b) { c.encode(b, "abcd"); }), wire);
    ParseResult r = ParseOne(wire);
    ASSERT_EQ(r.status, Status::kFrame);
    EXPECT_EQ(r.consumed, 9u);
    EXPECT_EQ(static_cast<uint8_t>(r.request.op), c.op);
    EXPECT_EQ(r.request.command.id, c.id);
    EXPECT_EQ(r.request.command.key, "abcd");
  }
}

TEST(CodecTest, Expire) {
  const std::string wire = Op(0x05) + U32(2) + "kk" + U64(7);
  EXPECT_EQ(Enc([](Buffer* b) { EncodeExpire(b, "kk", 7); }), wire);
  ParseResult r = ParseOne(wire);
  ASSERT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.request.command.id, core::CommandId::kExpire);
  EXPECT_EQ(r.request.command.key, "kk");
  EXPECT_EQ(r.request.command.ttl_ms, 7000u);
}

TEST(CodecTest, Auth) {
  const std::string wire = Op(0x07) + U32(6) + "s3cr3t";
  EXPECT_EQ(Enc([](Buffer* b) { EncodeAuth(b, "s3cr3t"); }), wire);
  ParseResult r = ParseOne(wire);
  ASSERT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.request.op, Opcode::kAuth);
  EXPECT_EQ(r.request.token, "s3cr3t");
}

TEST(CodecTest, KeysAndValuesAreArbitraryBytes) {
  const std::string key("\0k\0", 3), value("\xff\0\x13", 3);
  const std::string put = Enc([&](Buffer* b) { EncodePut(b, key, value); });
  ParseResult r = ParseOne(put);
  ASSERT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.request.command.key, key);
  EXPECT_EQ(r.request.command.value, value);
  const std::string get = Enc([](Buffer* b) { EncodeGet(b, ""); });
  r = ParseOne(get);
  ASSERT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.request.command.key, "");
}

// ---- Errors and limits ----

TEST(CodecTest, UnknownOpcodes) {
  for (int op : {0x00, 0x09, 0x10, 0x13, 0x7f, 0x80, 0xff, int{'*'}}) {
    ParseResult r = ParseOne(Op(static_cast<uint8_t>(op)) + "whatever");
    ASSERT_EQ(r.status, Status::kError) << op;
    EXPECT_EQ(r.error, ParseError::kUnknownOpcode);
    EXPECT_EQ(r.detail, static_cast<uint64_t>(op));
  }
  EXPECT_THAT(ParseErrorMessage(ParseOne("*1\r\n"), {}),
              HasSubstr("unknown opcode 0x2a (this port speaks the CrabCache binary protocol"));
}

TEST(CodecTest, BadTtlFlag) {
  for (int flag : {2, 0x10, 0xff}) {
    ParseResult r = ParseOne(Op(0x02) + U32(1) + "k" + U32(1) + "v" + Op(flag));
    ASSERT_EQ(r.status, Status::kError);
    EXPECT_EQ(r.error, ParseError::kBadTtlFlag);
    EXPECT_EQ(r.detail, static_cast<uint64_t>(flag));
  }
}

TEST(CodecTest, KeyLimitIsInclusiveAndCheckedFromTheLengthAlone) {
  const Limits limits{.max_key_bytes = 8, .max_value_bytes = 16};
  EXPECT_EQ(ParseOne(Op(0x03) + U32(8) + "12345678", limits).status, Status::kFrame);
  for (uint8_t op : {0x02, 0x03, 0x04, 0x05, 0x08}) {
    // Only the 5 header bytes: the error needs no key bytes (nothing is buffered for them).
    ParseResult r = ParseOne(Op(op) + U32(9), limits);
    ASSERT_EQ(r.status, Status::kError) << int{op};
    EXPECT_EQ(r.error, ParseError::kKeyTooLong);
    EXPECT_EQ(r.detail, 9u);
  }
  EXPECT_EQ(ParseErrorMessage(ParseOne(Op(0x03) + U32(9), limits), limits),
            "INVALID_ARGUMENT: key length 9 exceeds max_key_bytes (8)");
}

TEST(CodecTest, ValueLimit) {
  const Limits limits{.max_key_bytes = 8, .max_value_bytes = 16};
  const std::string head = Op(0x02) + U32(1) + "k";
  EXPECT_EQ(ParseOne(head + U32(16) + std::string(16, 'v') + Op(0), limits).status, Status::kFrame);
  ParseResult r = ParseOne(head + U32(17), limits);
  ASSERT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, ParseError::kValueTooLong);
  EXPECT_EQ(ParseErrorMessage(r, limits),
            "INVALID_ARGUMENT: value length 17 exceeds max_value_bytes (16)");
  r = ParseOne(head + U32(0xffffffff), limits);
  EXPECT_EQ(r.error, ParseError::kValueTooLong);
}

TEST(CodecTest, TokenLimit) {
  EXPECT_EQ(ParseOne(Op(0x07) + U32(kMaxTokenBytes) + std::string(kMaxTokenBytes, 't')).status,
            Status::kFrame);
  ParseResult r = ParseOne(Op(0x07) + U32(kMaxTokenBytes + 1));
  ASSERT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, ParseError::kTokenTooLong);
}

TEST(CodecTest, LargestConfigurableLimitsOnlyGiveAHint) {
  const Limits limits{.max_key_bytes = kMaxConfigurableBytes,
                      .max_value_bytes = kMaxConfigurableBytes};
  ParseResult r = ParseOne(Op(0x02) + U32(1) + "k" + U32(kMaxConfigurableBytes), limits);
  ASSERT_EQ(r.status, Status::kNeedMore);
  EXPECT_EQ(r.needed, 1 + 4 + 1 + 4 + kMaxConfigurableBytes + 1);
  EXPECT_EQ(ParseOne(Op(0x02) + U32(1) + "k" + U32(kMaxConfigurableBytes + 1), limits).error,
            ParseError::kValueTooLong);
}

TEST(CodecTest, ErrorNamesAreMetricLabels) {
  EXPECT_EQ(ParseErrorName(ParseError::kUnknownOpcode), "unknown_opcode");
  EXPECT_EQ(ParseErrorName(ParseError::kBadTtlFlag), "bad_ttl_flag");
  EXPECT_EQ(ParseErrorName(ParseError::kKeyTooLong), "key_too_long");
  EXPECT_EQ(ParseErrorName(ParseError::kValueTooLong), "value_too_long");
  EXPECT_EQ(ParseErrorName(ParseError::kTokenTooLong), "token_too_long");
}

TEST(CodecTest, NeedMoreHintIsALowerBoundOfTheFrame) {
  const std::string frames[] = {
      Enc([](Buffer* b) { EncodePut(b, "key", "value", 5); }),
      Enc([](Buffer* b) { EncodePut(b, "key", std::string(1000, 'v')); }),
      Enc([](Buffer* b) { EncodeExpire(b, "key", 5); }),
      Enc([](Buffer* b) { EncodeGet(b, "key"); }),
      Enc([](Buffer* b) { EncodeAuth(b, "tok"); }),
  };
  for (const std::string& f : frames) {
    for (size_t k = 0; k < f.size(); ++k) {
      ParseResult r = ParseOne(std::string_view(f).substr(0, k));
      ASSERT_EQ(r.status, Status::kNeedMore) << k;
      EXPECT_GT(r.needed, k);
      EXPECT_LE(r.needed, f.size());
    }
  }
}

// ---- Every input, split at every offset ----

TEST(CodecTest, EveryInputParsesTheSameWhateverTheReadBoundaries) {
  const Limits limits{.max_key_bytes = 64, .max_value_bytes = 256};
  std::string pipeline;
  pipeline += Enc(EncodePing);
  pipeline += Enc([](Buffer* b) { EncodePut(b, "alpha", "one"); });
  pipeline += Enc([](Buffer* b) { EncodePut(b, std::string("\0nul\0", 5), "two", 30); });
  pipeline += Enc([](Buffer* b) { EncodeGet(b, "alpha"); });
  pipeline += Enc([](Buffer* b) { EncodeDel(b, "alpha"); });
  pipeline += Enc([](Buffer* b) { EncodeExpire(b, "beta", 0); });
  pipeline += Enc([](Buffer* b) { EncodeTtl(b, "beta"); });
  pipeline += Enc(EncodeStatsRequest);
  pipeline += Enc([](Buffer* b) { EncodeAuth(b, "token"); });
  pipeline += Enc([](Buffer* b) { EncodePut(b, "", std::string(256, 'z')); });
  const std::vector<std::string> inputs = {
      pipeline,
      pipeline + Op(0x03) + U32(5) + "alp",                       // Ends mid-frame.
      pipeline + Op(0x42),                                        // Unknown opcode.
      pipeline + Op(0x02) + U32(1) + "k" + U32(1) + "v" + Op(2),  // Bad TTL flag.
      pipeline + Op(0x04) + U32(65) + std::string(65, 'k'),       // Key too long.
      pipeline + Op(0x02) + U32(1) + "k" + U32(257),              // Value too long.
      Op(0x07) + U32(kMaxTokenBytes + 1),                         // Token too long.
      Op(0x01) + Op(0x01) + Op(0x01) + Op(0x01),                  // Four PINGs.
  };
  for (const std::string& input : inputs) {
    SCOPED_TRACE(testing::PrintToString(input));
    ExpectSplitInvariant(input, limits);
  }
  const StreamResult r = ParseChunks(pipeline, {}, limits);
  ASSERT_EQ(r.frames.size(), 10u);
  EXPECT_EQ(r.frames[2].key, std::string("\0nul\0", 5));
  EXPECT_EQ(r.frames[2].ttl_ms, 30'000u);
  EXPECT_EQ(r.frames[8].token, "token");
  EXPECT_EQ(r.buffered, 0u);
  EXPECT_EQ(ParseChunks(inputs[1], {}, limits).buffered, 8u);
  EXPECT_EQ(ParseChunks(inputs[2], {}, limits).error, ParseError::kUnknownOpcode);
  EXPECT_EQ(ParseChunks(inputs[2], {}, limits).frames.size(), 10u);  // Good frames first.
}

TEST(CodecTest, ParsedFramesReencodeToTheSameBytes) {
  std::string input;
  input += Enc([](Buffer* b) { EncodePut(b, "k", "v", std::numeric_limits<uint64_t>::max()); });
  input += Enc([](Buffer* b) { EncodePut(b, "k", "v"); });
  input += Enc([](Buffer* b) { EncodeExpire(b, "k", 12345); });
  input += Enc([](Buffer* b) { EncodeAuth(b, ""); });
  input += Enc([](Buffer* b) { EncodeTtl(b, "k"); });
  const StreamResult r = ParseChunks(input, {}, {});
  std::string again;
  for (const Parsed& p : r.frames) {
    ParseResult one = ParseOne(p.wire);
    ASSERT_EQ(one.status, Status::kFrame);
    Buffer b;
    EncodeRequest(one.request, &b);
    EXPECT_EQ(b.view(), p.wire);
    again += p.wire;
  }
  EXPECT_EQ(again, input);
}

// ---- Replies ----

std::string EncodeOne(const core::Result& r) {
  Buffer b;
  EncodeResult(r, &b);
  return std::string(b.view());
}

TEST(CodecTest, EveryResultCodeMapsToItsReply) {
  using core::Result;
  using core::ResultCode;
  EXPECT_EQ(EncodeOne(Result{ResultCode::kOk}), "\x10");
  EXPECT_EQ(EncodeOne(Result{ResultCode::kPong}), "\x11");
  EXPECT_EQ(EncodeOne(Result{ResultCode::kMiss}), "\x12");
  EXPECT_EQ(EncodeOne(Result{ResultCode::kNotFound}), "\x12");
  EXPECT_EQ(EncodeOne(Result{ResultCode::kHit, "hi"}), Op(0x14) + U32(2) + "hi");
  EXPECT_EQ(EncodeOne(Result{ResultCode::kHit, ""}), Op(0x14) + U32(0));
  EXPECT_EQ(EncodeOne(Result{ResultCode::kStats, "{}"}), Op(0x15) + U32(2) + "{}");
  EXPECT_EQ(EncodeOne(Result{ResultCode::kTtl, {}, -2}), Op(0x16) + U64(uint64_t(-2)));
  EXPECT_EQ(EncodeOne(Result{ResultCode::kTtl, {}, 1500}), Op(0x16) + U64(1500));
  const std::string msg = "RESOURCE_EXHAUSTED: OOM";
  EXPECT_EQ(EncodeOne(Result{ResultCode::kError, "OOM", 0, absl::StatusCode::kResourceExhausted}),
            Op(0x13) + U32(msg.size()) + msg);
}

TEST(CodecTest, ReplyEncoderAsksToStopOnceItsOutputReachesTheMark) {
  Buffer out;
  out.Append("earlier replies");
  ReplyEncoder enc;
  enc.Reset(&out, 100);
  enc.OnResult(core::Result{core::ResultCode::kHit, std::string(50, 'a')});
  EXPECT_FALSE(enc.stop_requested());
  // The reply that crosses the mark is encoded whole; then the encoder asks for a stop.
  enc.OnResult(core::Result{core::ResultCode::kHit, std::string(50, 'b')});
  EXPECT_TRUE(enc.stop_requested());
  EXPECT_EQ(out.size(), 15 + 2 * (kReplyHeaderBytes + 50));
  enc.Reset(&out, SIZE_MAX);
  EXPECT_FALSE(enc.stop_requested());
  enc.OnResult(core::Result{core::ResultCode::kOk});
  EXPECT_FALSE(enc.stop_requested());
  // A mark already passed stops after the first result.
  enc.Reset(&out, 0);
  enc.OnResult(core::Result{core::ResultCode::kPong});
  EXPECT_TRUE(enc.stop_requested());
}

TEST(CodecTest, ReplyParserReadsEveryReplySplitAnywhere) {
  std::string stream;
  Buffer b;
  EncodeOk(&b);
  EncodePong(&b);
  EncodeNull(&b);
  EncodeError(&b, "INVALID_ARGUMENT: nope");
  EncodeValue(&b, std::string("v\0v", 3));
  EncodeStatsReply(&b, "{\"keys\":1}");
  EncodeInt(&b, -1);
  EncodeInt(&b, std::numeric_limits<int64_t>::max());
  stream = std::string(b.view());
  const std::vector<ReplyType> want = {ReplyType::kOk,    ReplyType::kPong,  ReplyType::kNull,
                                       ReplyType::kError, ReplyType::kValue, ReplyType::kStats,
                                       ReplyType::kInt,   ReplyType::kInt};
  for (size_t k = 0; k <= stream.size(); ++k) {
    std::string buf(stream.substr(0, k));
    std::vector<ReplyType> got;
    std::string reencoded;
    size_t delivered = k;
    for (;;) {
      ReplyParseResult r = ParseReply(buf, 1 << 20);
      if (r.status == ReplyParseResult::Status::kNeedMore) {
        EXPECT_GT(r.needed, buf.size());
        if (delivered == stream.size()) break;
        buf += stream.substr(delivered);
        delivered = stream.size();
        continue;
      }
      ASSERT_EQ(r.status, ReplyParseResult::Status::kReply);
      got.push_back(r.reply.type);
      Buffer again;
      EncodeReply(r.reply, &again);
      EXPECT_EQ(again.view(), std::string_view(buf).substr(0, r.consumed));
      reencoded += std::string(again.view());
      buf.erase(0, r.consumed);
    }
    EXPECT_EQ(got, want) << "split at " << k;
    EXPECT_EQ(reencoded, stream);
  }
}

TEST(CodecTest, ReplyParserErrors) {
  EXPECT_EQ(ParseReply("\x01", 10).status, ReplyParseResult::Status::kError);
  EXPECT_EQ(ParseReply(Op(0x14) + U32(11), 10).status, ReplyParseResult::Status::kError);
  EXPECT_EQ(ParseReply(Op(0x14) + U32(10), 10).status, ReplyParseResult::Status::kNeedMore);
}

// ---- docs/protocol.md's examples, byte for byte ----

std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    if (!out.empty()) out += ' ';
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

TEST(CodecTest, DocExamples) {
  EXPECT_EQ(Hex(Enc(EncodePing)), "01");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodePut(b, "user:1", "hello"); })),
            "02 06 00 00 00 75 73 65 72 3a 31 05 00 00 00 68 65 6c 6c 6f 00");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodePut(b, "user:1", "hello", 60); })),
            "02 06 00 00 00 75 73 65 72 3a 31 05 00 00 00 68 65 6c 6c 6f 01 3c 00 00 00 00 00 00 "
            "00");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeGet(b, "user:1"); })),
            "03 06 00 00 00 75 73 65 72 3a 31");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeDel(b, "user:1"); })),
            "04 06 00 00 00 75 73 65 72 3a 31");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeExpire(b, "user:1", 30); })),
            "05 06 00 00 00 75 73 65 72 3a 31 1e 00 00 00 00 00 00 00");
  EXPECT_EQ(Hex(Enc(EncodeStatsRequest)), "06");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeAuth(b, "s3cret"); })),
            "07 06 00 00 00 73 33 63 72 65 74");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeTtl(b, "user:1"); })),
            "08 06 00 00 00 75 73 65 72 3a 31");
  EXPECT_EQ(Hex(Enc(EncodeOk)), "10");
  EXPECT_EQ(Hex(Enc(EncodePong)), "11");
  EXPECT_EQ(Hex(Enc(EncodeNull)), "12");
  const std::string error = "INVALID_ARGUMENT: unknown opcode 0x42";
  EXPECT_EQ(ParseErrorMessage(ParseOne("\x42"), {}), error);
  EXPECT_EQ(Hex(Enc([&](Buffer* b) { EncodeError(b, error); })),
            "13 25 00 00 00 49 4e 56 41 4c 49 44 5f 41 52 47 55 4d 45 4e 54 3a 20 75 6e 6b 6e 6f "
            "77 6e 20 6f 70 63 6f 64 65 20 30 78 34 32");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeValue(b, "hello"); })), "14 05 00 00 00 68 65 6c 6c 6f");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeStatsReply(b, "{\"keys\":42}"); })),
            "15 0b 00 00 00 7b 22 6b 65 79 73 22 3a 34 32 7d");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeInt(b, 59998); })), "16 5e ea 00 00 00 00 00 00");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeInt(b, -1); })), "16 ff ff ff ff ff ff ff ff");
  EXPECT_EQ(Hex(Enc([](Buffer* b) { EncodeInt(b, -2); })), "16 fe ff ff ff ff ff ff ff");
  // The pipeline example: two good frames, then the unknown opcode; the PING is never parsed.
  const std::string pipeline(
      "\x02\x01\x00\x00\x00k\x01\x00\x00\x00v\x00"
      "\x03\x01\x00\x00\x00k\x42\x01",
      20);
  const StreamResult r = ParseChunks(pipeline, {}, {});
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.error, ParseError::kUnknownOpcode);
}

}  // namespace
}  // namespace crabcache::fastpath
