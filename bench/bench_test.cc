#include <random>
#include <string>

#include "bench/flags.h"
#include "bench/histogram.h"
#include "bench/protocol.h"
#include "bench/stream_load.h"
#include "gtest/gtest.h"

namespace crabcache::bench {
namespace {

TEST(HistogramTest, QuantilesWithinTwoPercent) {
  LatencyHistogram h;
  std::vector<uint64_t> all;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 50000; ++i) {
    const uint64_t v = rng() % (uint64_t{1} << (rng() % 36));
    all.push_back(v);
    h.Record(v);
  }
  std::sort(all.begin(), all.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = static_cast<double>(all[static_cast<size_t>(q * (all.size() - 1))]);
    const double got = static_cast<double>(h.Quantile(q));
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(got, exact * 1.02 + 1) << q;
  }
  EXPECT_EQ(h.Quantile(1.0), all.back());
  EXPECT_EQ(h.count(), all.size());
}

TEST(KeysTest, FixedWidthAndDistinct) {
  EXPECT_EQ(KeyFor(42, 16), "key:000000000042");
  EXPECT_EQ(KeyFor(42, 16).size(), 16u);
  EXPECT_NE(KeyFor(1, 16), KeyFor(10, 16));
  EXPECT_EQ(ValueFor(7, 10), "7:hhhhhhhh");
  EXPECT_EQ(ValueFor(7, 0), "");
}

TEST(RespTest, EncodesAndParsesEveryReplyKind) {
  auto resp = MakeRespProtocol();
  std::string out;
  resp->AppendSet("k", "v\r\n", &out);
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n");
  Reply r;
  EXPECT_EQ(resp->ParseReply("+OK\r\n", &r), 5);
  EXPECT_EQ(r.kind, ReplyKind::kOk);
  EXPECT_EQ(resp->ParseReply("$-1\r\n", &r), 5);
  EXPECT_EQ(r.kind, ReplyKind::kNull);
  EXPECT_EQ(resp->ParseReply("$3\r\na\r\n\r\n", &r), 9);
  EXPECT_EQ(r.value, "a\r\n");
  EXPECT_EQ(resp->ParseReply("$3\r\nab", &r), 0);
  EXPECT_EQ(resp->ParseReply("-ERR x\r\n", &r), 8);
  EXPECT_EQ(r.kind, ReplyKind::kError);
  EXPECT_EQ(resp->ParseReply("!", &r), 0);
  EXPECT_EQ(resp->ParseReply("!x\r\n", &r), -1);
}

TEST(BinaryTest, RoundTripsThroughTheFastPathCodec) {
  auto bin = MakeBinaryProtocol();
  std::string out;
  bin->AppendGet("key", &out);
  EXPECT_EQ(out, std::string("\x03\x03\x00\x00\x00key", 8));
  out.clear();
  bin->AppendSet("k", "v", &out);
  EXPECT_EQ(out, std::string("\x02\x01\x00\x00\x00k\x01\x00\x00\x00v\x00", 12));
  Reply r;
  EXPECT_EQ(bin->ParseReply(std::string("\x10", 1), &r), 1);
  EXPECT_EQ(r.kind, ReplyKind::kOk);
  EXPECT_EQ(bin->ParseReply(std::string("\x12", 1), &r), 1);
  EXPECT_EQ(r.kind, ReplyKind::kNull);
  EXPECT_EQ(bin->ParseReply(std::string("\x14\x02\x00\x00\x00hi", 7), &r), 7);
  EXPECT_EQ(r.kind, ReplyKind::kValue);
  EXPECT_EQ(r.value, "hi");
  EXPECT_EQ(bin->ParseReply(std::string("\x14\x02\x00\x00\x00h", 6), &r), 0);
  EXPECT_EQ(bin->ParseReply(std::string("\x7f", 1), &r), -1);
}

TEST(FlagsTest, DashesAndUnderscoresAgree) {
  const char* argv[] = {"bench", "--get_ratio=0.5", "--key-size", "20", "--json"};
  auto flags =
      Flags::Parse(5, const_cast<char**>(argv), {"get-ratio", "key-size", "json"}, {"json"});
  ASSERT_TRUE(flags.ok());
  EXPECT_EQ(*flags->Double("get-ratio", 0), 0.5);
  EXPECT_EQ(*flags->Int("key-size", 0), 20);
  EXPECT_TRUE(flags->Bool("json"));
  const char* bad[] = {"bench", "--nope=1"};
  EXPECT_FALSE(Flags::Parse(2, const_cast<char**>(bad), {"json"}, {}).ok());
}

}  // namespace
}  // namespace crabcache::bench
