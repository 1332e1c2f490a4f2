#include "service/batch_decoder.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crabcache/v1/cache.pb.h"
#include "gtest/gtest.h"
#include "service/codec_check.h"

namespace crabcache::service {
namespace {

using crabcache::v1::BatchRequest;
using testing::CompareDecoders;

constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

// Wire-format building blocks for hand-made messages: non-canonical, odd and malformed ones.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}
std::string Tag(uint32_t field, uint32_t type) { return Varint(uint64_t{field} << 3 | type); }
std::string Len(uint32_t field, const std::string& payload) {
  return Tag(field, 2) + Varint(payload.size()) + payload;
}
std::string VarintField(uint32_t field, uint64_t value) { return Tag(field, 0) + Varint(value); }
// A BatchRequest.commands entry whose Command holds `command_body`.
std::string Cmd(const std::string& command_body) { return Len(2, command_body); }
// A Command body with operation `op` (1 ping ... 7 stats) holding `op_body`.
std::string Op(uint32_t op, const std::string& op_body = "") { return Len(op, op_body); }

DecodedBatch Decode(const std::string& bytes, size_t limit = kNoLimit) {
  DecodedBatch batch;
  const absl::Status status = DecodeBatchRequest(bytes, limit, &batch);
  EXPECT_TRUE(status.ok()) << status;
  return batch;
}

void ExpectAgreesWithProtobuf(const std::string& bytes, size_t small_limit = 1) {
  EXPECT_EQ(CompareDecoders(bytes, small_limit), "");
}

void ExpectRefused(const std::string& bytes, const std::string& why) {
  DecodedBatch batch;
  const absl::Status status = DecodeBatchRequest(bytes, kNoLimit, &batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << why;
  EXPECT_EQ(status.message().rfind("malformed BatchRequest: ", 0), 0u) << status << " " << why;
  EXPECT_FALSE(batch.over_limit);
  BatchRequest proto;
  EXPECT_FALSE(proto.ParseFromString(bytes)) << "protobuf accepts it: " << why;
}

TEST(BatchDecoderTest, EmptyRequestIsAnEmptyBatch) {
  const DecodedBatch batch = Decode("");
  EXPECT_EQ(batch.id, 0u);
  EXPECT_EQ(batch.total_commands, 0u);
  EXPECT_TRUE(batch.commands.empty());
  ExpectAgreesWithProtobuf("");
}

TEST(BatchDecoderTest, EveryOperationAndField) {
  BatchRequest request;
  request.set_id(0xfedcba9876543210);
  request.add_commands()->mutable_ping();
  auto* set = request.add_commands()->mutable_set();
  set->set_key(std::string("k\0\xff", 3));
  set->set_value("value");
  set->set_ttl_ms(1500);
  request.add_commands()->mutable_set()->set_key("no-ttl");
  request.add_commands()->mutable_get()->set_key("g");
  request.add_commands()->mutable_delete_()->set_key("d");
  request.add_commands()->mutable_expire()->set_key("e");
  request.mutable_commands(5)->mutable_expire()->set_ttl_ms(0);
  request.add_commands()->mutable_expire()->set_key("e2");
  request.mutable_commands(6)->mutable_expire()->set_ttl_ms(uint64_t{1} << 63);
  request.add_commands()->mutable_ttl()->set_key("t");
  request.add_commands()->mutable_stats();
  const std::string bytes = request.SerializeAsString();

  const DecodedBatch batch = Decode(bytes);
  EXPECT_EQ(batch.id, 0xfedcba9876543210u);
  ASSERT_EQ(batch.commands.size(), 9u);
  EXPECT_EQ(batch.commands[0].id, core::CommandId::kPing);
  EXPECT_EQ(batch.commands[1].id, core::CommandId::kSet);
  EXPECT_EQ(batch.commands[1].key, std::string_view("k\0\xff", 3));
  EXPECT_EQ(batch.commands[1].value, "value");
  EXPECT_TRUE(batch.commands[1].has_ttl);
  EXPECT_EQ(batch.commands[1].ttl_ms, 1500u);
  EXPECT_EQ(batch.commands[2].key, "no-ttl");
  EXPECT_EQ(batch.commands[2].value, "");
  EXPECT_FALSE(batch.commands[2].has_ttl);  // ttl_ms 0: no expiry.
  EXPECT_EQ(batch.commands[3].id, core::CommandId::kGet);
  EXPECT_EQ(batch.commands[4].id, core::CommandId::kDelete);
  EXPECT_EQ(batch.commands[5].id, core::CommandId::kExpire);
  EXPECT_EQ(batch.commands[5].ttl_ms, 0u);  // EXPIRE 0: expires at once.
  EXPECT_EQ(batch.commands[6].ttl_ms, uint64_t{1} << 63);
  EXPECT_EQ(batch.commands[7].id, core::CommandId::kTtl);
  EXPECT_EQ(batch.commands[8].id, core::CommandId::kStats);
  ExpectAgreesWithProtobuf(bytes, 4);
}

TEST(BatchDecoderTest, KeysAndValuesViewTheInput) {
  const std::string bytes = Cmd(Op(2, Len(1, "key") + Len(2, "value")));
  const DecodedBatch batch = Decode(bytes);
  ASSERT_EQ(batch.commands.size(), 1u);
  EXPECT_EQ(batch.commands[0].key.data(), bytes.data() + 6);
  EXPECT_EQ(batch.commands[0].value.data(), bytes.data() + 11);
}

TEST(BatchDecoderTest, CommandsWithoutAnOperationAreNoOpsInPlace) {
  const std::string get = Cmd(Op(3, Len(1, "a")));
  const std::string bytes = Cmd("") + get + Cmd("") + Cmd("") + get + Cmd(VarintField(9, 1));
  const DecodedBatch batch = Decode(bytes);
  EXPECT_EQ(batch.total_commands, 6u);
  EXPECT_EQ(batch.commands.size(), 2u);
  EXPECT_EQ(batch.no_op_positions, (std::vector<uint32_t>{0, 2, 3, 5}));
  ExpectAgreesWithProtobuf(bytes, 3);
}

TEST(BatchDecoderTest, Proto3RepeatedOccurrences) {
  // A scalar or bytes field given twice: the last one wins.
  const std::string two_ids = VarintField(1, 5) + VarintField(1, 7);
  EXPECT_EQ(Decode(two_ids).id, 7u);
  const std::string two_keys = Cmd(Op(3, Len(1, "first") + Len(1, "second")));
  EXPECT_EQ(Decode(two_keys).commands[0].key, "second");
  // The same operation twice is merged: fields the second one lacks keep their value.
  const std::string merged =
      Cmd(Op(2, Len(1, "a") + Len(2, "x") + VarintField(3, 9)) + Op(2, Len(1, "b")));
  DecodedBatch batch = Decode(merged);
  EXPECT_EQ(batch.commands[0].key, "b");
  EXPECT_EQ(batch.commands[0].value, "x");
  EXPECT_EQ(batch.commands[0].ttl_ms, 9u);
  // Another operation replaces it, and a later one starts afresh.
  const std::string replaced = Cmd(Op(2, Len(1, "a") + Len(2, "x")) + Op(3, Len(1, "g")));
  batch = Decode(replaced);
  EXPECT_EQ(batch.commands[0].id, core::CommandId::kGet);
  EXPECT_EQ(batch.commands[0].key, "g");
  const std::string afresh =
      Cmd(Op(2, Len(1, "a") + Len(2, "x")) + Op(3, Len(1, "g")) + Op(2, Len(2, "y")));
  batch = Decode(afresh);
  EXPECT_EQ(batch.commands[0].id, core::CommandId::kSet);
  EXPECT_EQ(batch.commands[0].key, "");
  EXPECT_EQ(batch.commands[0].value, "y");
  // An explicit empty value overrides too.
  const std::string emptied = Cmd(Op(6, Len(1, "t")) + Op(6, Len(1, "")));
  EXPECT_EQ(Decode(emptied).commands[0].key, "");
  // Commands interleaved with ids: order kept, last id wins.
  const std::string interleaved = Cmd(Op(1)) + VarintField(1, 3) + Cmd(Op(7)) + VarintField(1, 4);
  batch = Decode(interleaved);
  EXPECT_EQ(batch.id, 4u);
  ASSERT_EQ(batch.commands.size(), 2u);
  EXPECT_EQ(batch.commands[1].id, core::CommandId::kStats);

  for (const std::string* bytes :
       {&two_ids, &two_keys, &merged, &replaced, &afresh, &emptied, &interleaved}) {
    ExpectAgreesWithProtobuf(*bytes);
  }
}

// Every kind of unknown field, and known field numbers with another wire type, at every level.
TEST(BatchDecoderTest, UnknownFieldsAreSkipped) {
  const std::string unknown = VarintField(15, 300) + Tag(16, 1) + std::string(8, 'f') +
                              Len(1000, "skip me") + Tag(17, 5) + std::string(4, 'g') + Tag(18, 3) +
                              VarintField(1, 1) + Tag(19, 3) + Len(2, "in a nested group") +
                              Tag(19, 4) + Tag(18, 4) + VarintField(536870911, 1);
  const std::string get = Op(3, unknown + Len(1, "k") + unknown);
  const std::string bytes = unknown + Cmd(unknown + get + unknown) + unknown + VarintField(1, 9);
  DecodedBatch batch = Decode(bytes);
  EXPECT_EQ(batch.id, 9u);
  ASSERT_EQ(batch.commands.size(), 1u);
  EXPECT_EQ(batch.commands[0].id, core::CommandId::kGet);
  EXPECT_EQ(batch.commands[0].key, "k");
  ExpectAgreesWithProtobuf(bytes);

  // Known numbers, other wire types: id as bytes, commands as a varint, an op as a group, Set's
  // key as a varint, its ttl_ms as fixed64, its value as fixed32.
  const std::string odd = Len(1, "not an id") + VarintField(2, 5) +
                          Cmd(Tag(3, 3) + Tag(3, 4) +
                              Op(2, VarintField(1, 7) + Tag(3, 1) + std::string(8, '\1') +
                                        Tag(2, 5) + std::string(4, '\2') + Len(1, "key")));
  batch = Decode(odd);
  EXPECT_EQ(batch.id, 0u);
  ASSERT_EQ(batch.commands.size(), 1u);
  EXPECT_EQ(batch.commands[0].id, core::CommandId::kSet);
  EXPECT_EQ(batch.commands[0].key, "key");
  EXPECT_EQ(batch.commands[0].value, "");
  EXPECT_FALSE(batch.commands[0].has_ttl);
  ExpectAgreesWithProtobuf(odd);

  // Ping and Stats have no fields, but what they hold is still checked.
  ExpectAgreesWithProtobuf(Cmd(Op(1, unknown)) + Cmd(Op(7, unknown)));
  ExpectRefused(Cmd(Op(1, Tag(0, 0))), "a zero tag inside Ping");
}

TEST(BatchDecoderTest, MalformedInputsAreRefused) {
  const std::string get = Cmd(Op(3, Len(1, "k")));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a zero tag", get + std::string(1, '\0')},
      {"field number 0 with a wire type", get + Len(0, "x")},
      {"wire type 6", get + Tag(5, 6) + "x"},
      {"wire type 7", Tag(5, 7)},
      {"an end-group tag at the top", get + Tag(5, 4)},
      {"an end-group tag in a command", Cmd(Tag(5, 4))},
      {"an end-group tag in an operation", Cmd(Op(3, Tag(1, 4)))},
      {"a group without its end", Tag(5, 3) + VarintField(1, 1)},
      {"a group ended by another field", Tag(5, 3) + Tag(6, 4)},
      {"a group ended by a zero tag", Tag(5, 3) + std::string(1, '\0') + Tag(5, 4)},
      {"a truncated varint", VarintField(1, 1) + "\x08\x80"},
      {"an 11-byte varint", "\x08" + std::string(10, '\x80') + std::string(1, '\0')},
      {"a 6-byte tag", std::string(5, '\x88') + std::string(1, '\0') + "\x01"},
      {"a truncated tag", std::string("\x88")},
      {"a length past the end", Tag(2, 2) + Varint(10) + "short"},
      {"a 2 GiB length", Tag(9, 2) + std::string("\x80\x80\x80\x80\x08")},
      {"a 6-byte length", Tag(9, 2) + std::string("\x81\x80\x80\x80\x80") + std::string(1, '\0')},
      {"a length near INT_MAX", Tag(9, 2) + Varint(0x7ffffff5)},
      {"a truncated fixed64", Tag(9, 1) + "1234567"},
      {"a truncated fixed32", Tag(9, 5) + "123"},
      {"an operation running past its command", Len(2, Tag(3, 2) + Varint(5) + "k")},
      {"a key running past its operation", Cmd(Len(3, Tag(1, 2) + Varint(3)) + "abc")},
  };
  for (const auto& [why, bytes] : cases) {
    ExpectRefused(bytes, why);
    ExpectAgreesWithProtobuf(bytes);
  }
  DecodedBatch batch;
  EXPECT_EQ(DecodeBatchRequest(get + Len(0, "x"), kNoLimit, &batch).message(),
            "malformed BatchRequest: field number 0 at byte 7");
}

TEST(BatchDecoderTest, OverlongButValidEncodingsAreAccepted) {
  // A 10-byte varint whose last byte carries bits past 64: protobuf drops them.
  const std::string id = "\x08" + std::string(9, '\xff') + "\x7f";
  EXPECT_EQ(Decode(id).id, std::numeric_limits<uint64_t>::max());
  ExpectAgreesWithProtobuf(id);
  // A 5-byte tag (bits past 32 dropped) and a 5-byte length.
  const std::string tag5 = std::string("\x88\x80\x80\x80\x70") + Varint(3);
  ExpectAgreesWithProtobuf(tag5);
  const std::string len5 =
      Tag(2, 2) + std::string("\x82\x80\x80\x80\x00", 5) + Tag(7, 2) + std::string(1, '\0');
  EXPECT_EQ(Decode(len5).commands.size(), 1u);
  ExpectAgreesWithProtobuf(len5);
}

TEST(BatchDecoderTest, TruncatedAtEveryOffset) {
  BatchRequest request;
  request.set_id(300);
  auto* set = request.add_commands()->mutable_set();
  set->set_key("key");
  set->set_value(std::string(200, 'v'));  // A two-byte length.
  set->set_ttl_ms(123456789);
  request.add_commands()->mutable_get()->set_key("key");
  request.add_commands();
  request.add_commands()->mutable_expire()->set_ttl_ms(1);
  const std::string bytes = request.SerializeAsString();
  int accepted = 0;
  for (size_t n = 0; n <= bytes.size(); ++n) {
    const std::string prefix = bytes.substr(0, n);
    ASSERT_EQ(CompareDecoders(prefix, 2), "") << "prefix of " << n << " bytes";
    DecodedBatch batch;
    accepted += DecodeBatchRequest(prefix, kNoLimit, &batch).ok();
  }
  EXPECT_GE(accepted, 5);  // The empty prefix, the id, each whole command.
  EXPECT_LT(accepted, static_cast<int>(bytes.size()) / 2);
}

// Messages and groups nested more than 100 deep are refused, as protobuf refuses them.
TEST(BatchDecoderTest, NestingDepthMatchesProtobuf) {
  int accepted = 0;
  int refused = 0;
  for (int depth = 90; depth <= 101; ++depth) {
    std::string group;
    for (int i = 0; i < depth; ++i) group = Tag(5, 3) + group + Tag(5, 4);
    for (const std::string& bytes : {group, Cmd(group), Cmd(Op(3, group))}) {
      ExpectAgreesWithProtobuf(bytes);
      DecodedBatch batch;
      (DecodeBatchRequest(bytes, kNoLimit, &batch).ok() ? accepted : refused)++;
    }
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
}

TEST(BatchDecoderTest, TheCommandLimit) {
  std::string bytes;
  for (int i = 0; i < 10000; ++i) bytes += Cmd(Op(3, Len(1, absl::StrCat("key", i))));
  DecodedBatch batch = Decode(bytes, 10000);
  EXPECT_EQ(batch.commands.size(), 10000u);
  EXPECT_EQ(batch.commands[9999].key, "key9999");

  // One more, with the id after the commands: refused, counted to the end, nothing stored past
  // the limit.
  bytes += Cmd("") + VarintField(1, 77);
  const absl::Status status = DecodeBatchRequest(bytes, 10000, &batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "batch 77 has 10001 commands; the limit is 10000");
  EXPECT_TRUE(batch.over_limit);
  EXPECT_EQ(batch.total_commands, 10001u);
  EXPECT_EQ(batch.commands.size(), 10000u);
  EXPECT_TRUE(batch.no_op_positions.empty());

  // A malformed request is malformed, whatever its size.
  const absl::Status malformed = DecodeBatchRequest(bytes + Tag(3, 7), 10, &batch);
  EXPECT_EQ(malformed.message().rfind("malformed BatchRequest", 0), 0u) << malformed;
  EXPECT_FALSE(batch.over_limit);

  // Decoding again reuses the batch: everything is reset.
  batch = Decode(Cmd(Op(1)));
  EXPECT_EQ(batch.total_commands, 1u);
  EXPECT_EQ(batch.id, 0u);
}

}  // namespace
}  // namespace crabcache::service
