// Unit tests of the bench's own logic: histogram quantiles, the key space, flag parsing, RESP
// parsing, reply verification, /proc parsing and the JSON report.
#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bench/config.h"
#include "bench/histogram.h"
#include "bench/keyspace.h"
#include "bench/proc_stat.h"
#include "bench/protocol.h"
#include "bench/report.h"
#include "gtest/gtest.h"

namespace crabcache::bench {
namespace {

// --- histogram ---

TEST(HistogramTest, QuantilesWithinTwoPercentOfExact) {
  LatencyHistogram h;
  std::vector<uint64_t> all;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 50000; ++i) {
    const uint64_t v = rng() % (uint64_t{1} << (rng() % 36));
    all.push_back(v);
    h.Record(v);
  }
  std::sort(all.begin(), all.end());
  for (double q : {0.0, 0.5, 0.9, 0.99, 0.999}) {
    const size_t rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * all.size())));
    const double exact = static_cast<double>(all[rank - 1]);
    const double got = static_cast<double>(h.Quantile(q));
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(got, exact * 1.02 + 1) << q;
  }
  EXPECT_EQ(h.Quantile(1.0), all.back());
  EXPECT_EQ(h.max(), all.back());
  EXPECT_EQ(h.count(), all.size());
}

TEST(HistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Quantile(0.5), 50u);
  EXPECT_EQ(h.Quantile(0.99), 99u);
  EXPECT_EQ(h.Quantile(1.0), 100u);
}

TEST(HistogramTest, EmptyIsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.Quantile(0.5), 0u);
  EXPECT_EQ(h.count(), 0u);
}

TEST(HistogramTest, WeightedRecordAndMergeEqualSeparateRecords) {
  LatencyHistogram weighted, merged, a, b;
  weighted.Record(1000, 99);
  weighted.Record(1'000'000, 1);
  for (int i = 0; i < 99; ++i) a.Record(1000);
  b.Record(1'000'000);
  merged.Merge(a);
  merged.Merge(b);
  for (double q : {0.5, 0.98, 0.99, 0.999}) EXPECT_EQ(weighted.Quantile(q), merged.Quantile(q));
  EXPECT_EQ(weighted.count(), 100u);
  // p99 is the 99th of 100 samples: still the fast one; p99.9 is the slow one.
  EXPECT_LT(weighted.Quantile(0.99), 1100u);
  EXPECT_GE(weighted.Quantile(0.999), 1'000'000u);
}

TEST(HistogramTest, HugeValuesDoNotOverflowTheBuckets) {
  LatencyHistogram h;
  h.Record(UINT64_MAX);
  h.Record(uint64_t{1} << 63);
  EXPECT_EQ(h.Quantile(1.0), UINT64_MAX);
  EXPECT_GE(h.Quantile(0.0), uint64_t{1} << 63);
}

// --- key space ---

TEST(KeySpaceTest, KeysAreFixedWidthAndDistinct) {
  auto ks = KeySpace::Create(1'000'000, 16, 10);
  ASSERT_TRUE(ks.ok()) << ks.status();
  EXPECT_EQ(ks->Key(42), "key:000000000042");
  EXPECT_EQ(ks->Key(999'999), "key:000000999999");
  std::set<std::string> seen;
  for (uint64_t i = 0; i < 2000; ++i) {
    const std::string k = ks->Key(i * 499);
    EXPECT_EQ(k.size(), 16u);
    seen.insert(k);
  }
  EXPECT_EQ(seen.size(), 2000u);
}

TEST(KeySpaceTest, ValuesAreDeterministicAndRecognised) {
  auto ks = KeySpace::Create(1000, 8, 10);
  ASSERT_TRUE(ks.ok());
  EXPECT_EQ(ks->Value(7), "7:hhhhhhhh");
  EXPECT_EQ(ks->Value(999), "999:llllll");
  EXPECT_TRUE(ks->ValueMatches(7, "7:hhhhhhhh"));
  EXPECT_FALSE(ks->ValueMatches(7, "7:hhhhhhhx"));
  EXPECT_FALSE(ks->ValueMatches(7, "7:hhhhhhh"));
  EXPECT_FALSE(ks->ValueMatches(8, "7:hhhhhhhh"));
  EXPECT_FALSE(ks->ValueMatches(17, "7:hhhhhhhh"));
}

TEST(KeySpaceTest, ValuesShorterThanTheirIndex) {
  auto ks = KeySpace::Create(100'000, 16, 3);
  ASSERT_TRUE(ks.ok());
  EXPECT_EQ(ks->Value(12345), "123");
  EXPECT_TRUE(ks->ValueMatches(12345, "123"));
  auto empty = KeySpace::Create(10, 16, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->Value(3), "");
  EXPECT_TRUE(empty->ValueMatches(3, ""));
  EXPECT_FALSE(empty->ValueMatches(3, "x"));
}

TEST(KeySpaceTest, RejectsKeysTooShortForTheKeyCount) {
  EXPECT_FALSE(KeySpace::Create(100'000, 8, 10).ok());  // "key:" + 5 digits = 9 bytes.
  EXPECT_TRUE(KeySpace::Create(100'000, 9, 10).ok());
  EXPECT_FALSE(KeySpace::Create(0, 16, 10).ok());
}

TEST(RngTest, BelowStaysInRangeAndCoversIt) {
  Rng rng(42);
  std::vector<int> hits(10);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t v = rng.Below(10);
    ASSERT_LT(v, 10u);
    ++hits[v];
  }
  for (int h : hits) EXPECT_GT(h, 800);
}

TEST(OpPickerTest, RatioIsRespected) {
  Rng rng(7);
  int gets = 0;
  const OpPicker ninety(0.9);
  for (int i = 0; i < 100000; ++i) gets += ninety.NextIsGet(rng);
  EXPECT_NEAR(gets / 100000.0, 0.9, 0.01);
  const OpPicker all(1.0), none(0.0);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(all.NextIsGet(rng));
    EXPECT_FALSE(none.NextIsGet(rng));
  }
}

// --- flags ---

absl::StatusOr<BenchConfig> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "crabcache-bench");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseConfig(static_cast<int>(argv.size()), argv.data());
}

TEST(ConfigTest, DefaultsMatchTheIssue) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->load.protocol, ProtocolKind::kBinary);
  EXPECT_EQ(c->load.port, 8000);
  EXPECT_EQ(c->load.connections, 50);
  EXPECT_EQ(c->load.pipeline, 1);
  EXPECT_EQ(c->load.keys, 100'000u);
  EXPECT_EQ(c->load.key_size, 16u);
  EXPECT_EQ(c->load.value_size, 64u);
  EXPECT_DOUBLE_EQ(c->load.get_ratio, 0.9);
  EXPECT_TRUE(c->load.prefill);
  EXPECT_FALSE(c->json);
}

TEST(ConfigTest, ParsesEveryFlagInBothSpellings) {
  auto c = Parse({"--protocol=grpc",
                  "--host",
                  "::1",
                  "--port=1234",
                  "--connections",
                  "4",
                  "--pipeline=64",
                  "--streams=8",
                  "--threads",
                  "2",
                  "--get_ratio=0.5",
                  "--keys=1000",
                  "--key-size=12",
                  "--value_size",
                  "10",
                  "--requests=500",
                  "--warmup=0.5",
                  "--server-pid=1",
                  "--seed=9",
                  "--json"});
  ASSERT_TRUE(c.ok()) << c.status();
  const LoadOptions& o = c->load;
  EXPECT_EQ(o.protocol, ProtocolKind::kGrpc);
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 1234);
  EXPECT_EQ(o.connections, 4);
  EXPECT_EQ(o.pipeline, 64);
  EXPECT_EQ(o.streams, 8);
  EXPECT_EQ(o.threads, 2);
  EXPECT_DOUBLE_EQ(o.get_ratio, 0.5);
  EXPECT_EQ(o.keys, 1000u);
  EXPECT_EQ(o.key_size, 12u);
  EXPECT_EQ(o.value_size, 10u);
  EXPECT_EQ(o.requests, 500u);
  EXPECT_DOUBLE_EQ(o.warmup_s, 0.5);
  EXPECT_EQ(c->server_pid, 1);
  EXPECT_EQ(o.seed, 9u);
  EXPECT_TRUE(c->json);
}

TEST(ConfigTest, DefaultPortFollowsTheProtocol) {
  EXPECT_EQ(Parse({"--protocol=resp"})->load.port, 6379);
  EXPECT_EQ(Parse({"--protocol=grpc"})->load.port, 50051);
}

TEST(ConfigTest, RejectsBadInput) {
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"--protocol=memcache"},
           {"--nope=1"},
           {"positional"},
           {"--pipeline"},
           {"--pipeline=0"},
           {"--pipeline=abc"},
           {"--get-ratio=1.5"},
           {"--get-ratio=nan"},
           {"--duration=5", "--requests=10"},
           {"--streams=8"},
           {"--protocol=resp", "--unary"},
           {"--protocol=grpc", "--unary", "--pipeline=4"},
           {"--keys=100000", "--key-size=8"},
           {"--json=maybe"},
           {"--port=70000"},
           {"--load-only", "--no-prefill"},
       }) {
    EXPECT_FALSE(Parse(bad).ok()) << bad[0];
  }
}

// --- RESP ---

TEST(RespTest, EncodesRequests) {
  auto resp = MakeRespProtocol();
  fastpath::Buffer out;
  resp->AppendSet("k", "v\r\n", &out);
  resp->AppendGet("key", &out);
  EXPECT_EQ(out.view(),
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
}

TEST(RespTest, ParsesEveryReplyKind) {
  auto resp = MakeRespProtocol();
  Reply r;
  EXPECT_EQ(resp->ParseReply("+OK\r\n", &r), 5);
  EXPECT_EQ(r.kind, ReplyKind::kOk);
  EXPECT_EQ(resp->ParseReply("+QUEUED\r\n", &r), 9);
  EXPECT_EQ(r.kind, ReplyKind::kOther);
  EXPECT_EQ(resp->ParseReply("$-1\r\n", &r), 5);
  EXPECT_EQ(r.kind, ReplyKind::kNull);
  EXPECT_EQ(resp->ParseReply("$3\r\na\r\n\r\n+OK", &r), 9);
  EXPECT_EQ(r.kind, ReplyKind::kValue);
  EXPECT_EQ(r.value, "a\r\n");
  EXPECT_EQ(resp->ParseReply("$0\r\n\r\n", &r), 6);
  EXPECT_EQ(r.value, "");
  EXPECT_EQ(resp->ParseReply("-ERR x\r\n", &r), 8);
  EXPECT_EQ(r.kind, ReplyKind::kError);
  EXPECT_EQ(r.value, "ERR x");
  EXPECT_EQ(resp->ParseReply(":12\r\n", &r), 5);
  EXPECT_EQ(r.kind, ReplyKind::kOther);
}

TEST(RespTest, EveryPrefixOfAReplyNeedsMore) {
  auto resp = MakeRespProtocol();
  const std::string full = "$10\r\n0123456789\r\n";
  Reply r;
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(resp->ParseReply(full.substr(0, n), &r), 0) << n;
  }
  EXPECT_EQ(resp->ParseReply(full, &r), static_cast<long>(full.size()));
}

TEST(RespTest, RejectsMalformedReplies) {
  auto resp = MakeRespProtocol();
  Reply r;
  EXPECT_EQ(resp->ParseReply("!x\r\n", &r), -1);
  EXPECT_EQ(resp->ParseReply("*1\r\n", &r), -1);
  EXPECT_EQ(resp->ParseReply("$x\r\n", &r), -1);
  EXPECT_EQ(resp->ParseReply("$-2\r\n", &r), -1);
  EXPECT_EQ(resp->ParseReply("$1\r\nab\r\n", &r), -1);
  EXPECT_EQ(resp->ParseReply(std::string(70000, 'a'), &r), -1);
}

// --- binary (fast path codec) ---

TEST(BinaryTest, EncodesRequestsAsProtocolV1) {
  auto bin = MakeBinaryProtocol();
  fastpath::Buffer out;
  bin->AppendGet("key", &out);
  EXPECT_EQ(out.view(), std::string_view("\x03\x03\x00\x00\x00key", 8));
  out.Clear();
  bin->AppendSet("k", "v", &out);
  EXPECT_EQ(out.view(), std::string_view("\x02\x01\x00\x00\x00k\x01\x00\x00\x00v\x00", 12));
}

TEST(BinaryTest, ParsesEveryReplyKind) {
  auto bin = MakeBinaryProtocol();
  Reply r;
  EXPECT_EQ(bin->ParseReply(std::string_view("\x10", 1), &r), 1);
  EXPECT_EQ(r.kind, ReplyKind::kOk);
  EXPECT_EQ(bin->ParseReply(std::string_view("\x12\x10", 2), &r), 1);
  EXPECT_EQ(r.kind, ReplyKind::kNull);
  EXPECT_EQ(bin->ParseReply(std::string_view("\x14\x02\x00\x00\x00hi", 7), &r), 7);
  EXPECT_EQ(r.kind, ReplyKind::kValue);
  EXPECT_EQ(r.value, "hi");
  EXPECT_EQ(bin->ParseReply(std::string_view("\x13\x03\x00\x00\x00OOM", 8), &r), 8);
  EXPECT_EQ(r.kind, ReplyKind::kError);
  EXPECT_EQ(r.value, "OOM");
  EXPECT_EQ(bin->ParseReply(std::string_view("\x11", 1), &r), 1);
  EXPECT_EQ(r.kind, ReplyKind::kOther);
}

TEST(BinaryTest, EveryPrefixNeedsMoreAndGarbageIsMalformed) {
  auto bin = MakeBinaryProtocol(/*max_reply_bytes=*/100);
  const std::string full("\x14\x05\x00\x00\x00hello", 10);
  Reply r;
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(bin->ParseReply(std::string_view(full).substr(0, n), &r), 0) << n;
  }
  EXPECT_EQ(bin->ParseReply(full, &r), 10);
  EXPECT_EQ(bin->ParseReply(std::string_view("\x7f", 1), &r), -1);
  EXPECT_EQ(bin->ParseReply(std::string_view("\x14\xff\x00\x00\x00", 5), &r), -1);  // > 100.
}

// --- verification ---

class CheckReplyTest : public ::testing::Test {
 protected:
  KeySpace keys_ = *KeySpace::Create(100, 8, 10);
};

TEST_F(CheckReplyTest, RightRepliesPass) {
  const std::string v = keys_.Value(5);
  EXPECT_EQ(CheckReply(keys_, Op::kGet, 5, {ReplyKind::kValue, v}), Check::kHit);
  EXPECT_EQ(CheckReply(keys_, Op::kSet, 5, {ReplyKind::kOk, {}}), Check::kOk);
  EXPECT_EQ(CheckReply(keys_, Op::kGet, 5, {ReplyKind::kNull, {}}), Check::kMiss);
  EXPECT_TRUE(Acceptable(Check::kMiss, /*allow_misses=*/true));
  EXPECT_FALSE(Acceptable(Check::kMiss, /*allow_misses=*/false));
}

TEST_F(CheckReplyTest, WrongRepliesFail) {
  const std::string other = keys_.Value(6);
  EXPECT_EQ(CheckReply(keys_, Op::kGet, 5, {ReplyKind::kValue, other}), Check::kWrongValue);
  EXPECT_EQ(CheckReply(keys_, Op::kGet, 5, {ReplyKind::kOk, {}}), Check::kWrongKind);
  EXPECT_EQ(CheckReply(keys_, Op::kGet, 5, {ReplyKind::kOther, "PONG"}), Check::kWrongKind);
  EXPECT_EQ(CheckReply(keys_, Op::kSet, 5, {ReplyKind::kNull, {}}), Check::kWrongKind);
  EXPECT_EQ(CheckReply(keys_, Op::kSet, 5, {ReplyKind::kValue, other}), Check::kWrongKind);
  EXPECT_EQ(CheckReply(keys_, Op::kSet, 5, {ReplyKind::kError, "OOM"}), Check::kServerError);
  for (Check c : {Check::kWrongValue, Check::kWrongKind, Check::kServerError}) {
    EXPECT_FALSE(Acceptable(c, true));
  }
}

TEST_F(CheckReplyTest, FailureMessagesNameTheRequestAndTheReply) {
  const std::string other = keys_.Value(6);
  const std::string wrong =
      DescribeFailure(keys_, Op::kGet, 5, {ReplyKind::kValue, other}, Check::kWrongValue);
  EXPECT_NE(wrong.find("GET \"key:0005\""), std::string::npos) << wrong;
  EXPECT_NE(wrong.find(other), std::string::npos) << wrong;
  EXPECT_NE(wrong.find(keys_.Value(5)), std::string::npos) << wrong;
  const std::string error =
      DescribeFailure(keys_, Op::kSet, 1, {ReplyKind::kError, "OOM"}, Check::kServerError);
  EXPECT_NE(error.find("OOM"), std::string::npos) << error;
}

// --- /proc parsing ---

TEST(ProcStatTest, CpuSecondsFromStatWithAnAwkwardName) {
  const std::string stat =
      "1234 (my (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
  auto cpu = ParseStatCpuTimes(stat, 100);
  ASSERT_TRUE(cpu.has_value());
  EXPECT_DOUBLE_EQ(cpu->user, 2.5);
  EXPECT_DOUBLE_EQ(cpu->system, 0.5);
  EXPECT_DOUBLE_EQ(cpu->total(), 3.0);
  EXPECT_FALSE(ParseStatCpuTimes("garbage", 100).has_value());
  EXPECT_FALSE(ParseStatCpuTimes("1 (x) S 1 2", 100).has_value());
}

TEST(ProcStatTest, RssFromStatus) {
  auto rss = ParseStatusRssBytes("Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t    2048 kB\nVmData: 1 kB\n");
  ASSERT_TRUE(rss.has_value());
  EXPECT_EQ(*rss, 2048u * 1024);
  EXPECT_FALSE(ParseStatusRssBytes("Name:\tx\n").has_value());
}

TEST(ProcStatTest, ReadsThisProcess) {
  EXPECT_TRUE(ProcessCpuTimes(getpid()).has_value());
  EXPECT_GT(ProcessRssBytes(getpid()).value_or(0), 0u);
  EXPECT_FALSE(ProcessCpuTimes(-5).has_value());
}

// --- report ---

TEST(ReportTest, JsonHoldsTheFigures) {
  BenchConfig config = *Parse({"--protocol=grpc", "--pipeline=64"});
  LoadResult r;
  r.ops = 1000;
  r.seconds = 2;
  r.verified = 1200;
  r.latency_ns.Record(100'000, 1000);
  const std::string json =
      FormatJson(config, r, {.cpu_seconds = 0.5, .user_seconds = 0.2, .rss_bytes = std::nullopt});
  EXPECT_NE(json.find("\"workload\":\"grpc-batch\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"ops_per_sec\":500.0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"ops_per_server_cpu_second\":2000.0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"server_user_seconds\":0.200"), std::string::npos) << json;
  EXPECT_NE(json.find("\"server_rss_bytes\":null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"verified\":1200"), std::string::npos) << json;
  EXPECT_EQ(json.back(), '\n');
  const std::string text = FormatText(config, r, {});
  EXPECT_NE(text.find("verified: all 1200 replies"), std::string::npos) << text;
}

}  // namespace
}  // namespace crabcache::bench
