#include "core/executor.h"

#include <string>
#include <vector>

#include "core/recording_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

using ::testing::ElementsAre;

class CountingMetrics : public MetricsSink {
 public:
  void RecordBatch(const BatchMetrics& b) override { batches.push_back(b); }
  std::vector<BatchMetrics> batches;
};

class ExecutorTest : public ::testing::Test {
 protected:
  ExecutorTest()
      : store_(StoreOptions{.num_shards = 8, .clock = &clock_}),
        executor_(&store_, &metrics_, ExecutorOptions{.max_key_bytes = 16, .max_value_bytes = 32}) {
  }

  std::vector<OwnedResult> Run(std::vector<Command> batch, Frontend fe = Frontend::kFastPath) {
    RecordingSink sink;
    executor_.Execute(fe, batch, sink);
    EXPECT_EQ(sink.results.size(), batch.size());
    return sink.results;
  }
  static std::vector<ResultCode> Codes(const std::vector<OwnedResult>& rs) {
    std::vector<ResultCode> out;
    for (const auto& r : rs) out.push_back(r.code);
    return out;
  }

  FakeClock clock_;
  Store store_;
  CountingMetrics metrics_;
  Executor executor_;
};

TEST_F(ExecutorTest, EveryCommandProducesItsResult) {
  auto rs =
      Run({Command::Ping(), Command::Set("k", "v"), Command::Get("k"), Command::Get("x"),
           Command::Ttl("k"), Command::Expire("k", 5000), Command::Ttl("k"), Command::Delete("k"),
           Command::Delete("k"), Command::Expire("k", 1), Command::Ttl("k"), Command::Stats()});
  EXPECT_THAT(Codes(rs), ElementsAre(ResultCode::kPong, ResultCode::kOk, ResultCode::kHit,
                                     ResultCode::kMiss, ResultCode::kTtl, ResultCode::kOk,
                                     ResultCode::kTtl, ResultCode::kOk, ResultCode::kNotFound,
                                     ResultCode::kNotFound, ResultCode::kTtl, ResultCode::kStats));
  EXPECT_EQ(rs[2].value, "v");
  EXPECT_EQ(rs[4].ttl_ms, kTtlNoExpiry);
  EXPECT_EQ(rs[6].ttl_ms, 5000);
  EXPECT_EQ(rs[10].ttl_ms, kTtlMissing);
  EXPECT_NE(rs[11].value.find("\"keys\":0"), std::string::npos) << rs[11].value;
}

TEST_F(ExecutorTest, SameKeyTwiceInOneBatchSeesEarlierEffects) {
  auto rs =
      Run({Command::Set("k", "1"), Command::Get("k"), Command::Set("k", "2"), Command::Get("k"),
           Command::Delete("k"), Command::Get("k"), Command::Set("k", "3"), Command::Get("k")});
  EXPECT_EQ(rs[1].value, "1");
  EXPECT_EQ(rs[3].value, "2");
  EXPECT_EQ(rs[5].code, ResultCode::kMiss);
  EXPECT_EQ(rs[7].value, "3");
}

TEST_F(ExecutorTest, ResultsStayInRequestOrderAcrossShards) {
  std::vector<std::string> keys, values;  // Commands only view their bytes: keep them alive.
  for (int i = 0; i < 200; ++i) keys.push_back("key-" + std::to_string(i));
  for (const auto& k : keys) values.push_back(k + "-value");
  std::vector<Command> sets, gets;
  for (size_t i = 0; i < keys.size(); ++i) sets.push_back(Command::Set(keys[i], values[i]));
  Run(sets);
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) gets.push_back(Command::Get(*it));
  auto rs = Run(gets);
  for (size_t i = 0; i < rs.size(); ++i)
    EXPECT_EQ(rs[i].value, keys[keys.size() - 1 - i] + "-value");
}

TEST_F(ExecutorTest, SetWithTtlUsesTheBatchClock) {
  Run({Command::SetWithTtl("k", "v", 1000)});
  clock_.Advance(999);
  EXPECT_EQ(Run({Command::Get("k")})[0].code, ResultCode::kHit);
  clock_.Advance(1);
  EXPECT_EQ(Run({Command::Get("k")})[0].code, ResultCode::kMiss);
}

TEST_F(ExecutorTest, SetWithZeroTtlIsInvisibleAtOnce) {
  auto rs = Run({Command::SetWithTtl("k", "v", 0), Command::Get("k")});
  EXPECT_EQ(rs[0].code, ResultCode::kOk);
  EXPECT_EQ(rs[1].code, ResultCode::kMiss);
}

TEST_F(ExecutorTest, LimitsYieldInvalidArgumentAndTheBatchGoesOn) {
  const std::string long_key(17, 'k'), long_value(33, 'v');
  auto rs = Run({Command::Set(long_key, "v"), Command::Set("k", long_value), Command::Get(long_key),
                 Command::Set(std::string(16, 'k'), std::string(32, 'v')), Command::Ping()});
  EXPECT_EQ(rs[0].code, ResultCode::kError);
  EXPECT_EQ(rs[0].error, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rs[0].value, "key exceeds max_key_bytes (16)");
  EXPECT_EQ(rs[1].value, "value exceeds max_value_bytes (32)");
  EXPECT_EQ(rs[2].code, ResultCode::kError);
  EXPECT_EQ(rs[3].code, ResultCode::kOk);
  EXPECT_EQ(rs[4].code, ResultCode::kPong);
}

TEST_F(ExecutorTest, EmptyBatchProducesNothingButIsCounted) {
  EXPECT_TRUE(Run({}).empty());
  ASSERT_EQ(metrics_.batches.size(), 1u);
  EXPECT_EQ(metrics_.batches[0].commands, 0u);
}

TEST_F(ExecutorTest, MetricsCountCommandsByOutcomeOncePerBatch) {
  Run({Command::Set("a", "1"), Command::Get("a"), Command::Get("b"), Command::Delete("b"),
       Command::Set(std::string(17, 'x'), "v")},
      Frontend::kGrpc);
  ASSERT_EQ(metrics_.batches.size(), 1u);
  const BatchMetrics& m = metrics_.batches[0];
  EXPECT_EQ(m.frontend, Frontend::kGrpc);
  EXPECT_EQ(m.commands, 5u);
  auto count = [&](CommandId c, Outcome o) {
    return m.counts[static_cast<size_t>(c)][static_cast<size_t>(o)];
  };
  EXPECT_EQ(count(CommandId::kSet, Outcome::kOk), 1u);
  EXPECT_EQ(count(CommandId::kSet, Outcome::kError), 1u);
  EXPECT_EQ(count(CommandId::kGet, Outcome::kHit), 1u);
  EXPECT_EQ(count(CommandId::kGet, Outcome::kMiss), 1u);
  EXPECT_EQ(count(CommandId::kDelete, Outcome::kMiss), 1u);
}

TEST_F(ExecutorTest, WorksWithoutMetrics) {
  Executor bare(&store_, nullptr);
  RecordingSink sink;
  std::vector<Command> batch = {Command::Ping()};
  bare.Execute(Frontend::kFastPath, batch, sink);
  ASSERT_EQ(sink.results.size(), 1u);
  EXPECT_EQ(sink.results[0].code, ResultCode::kPong);
}

// Asks the executor to stop once it has received `stop_after` results.
class StoppingSink : public RecordingSink {
 public:
  explicit StoppingSink(size_t stop_after) : stop_after_(stop_after) {}
  void OnResult(const Result& r) override {
    RecordingSink::OnResult(r);
    if (results.size() >= stop_after_) RequestStop();
  }

 private:
  const size_t stop_after_;
};

TEST_F(ExecutorTest, ASinkCanStopTheBatchAndTheRestDoesNotRun) {
  const std::vector<Command> batch = {Command::Set("a", "1"), Command::Get("a"),
                                      Command::Set("b", "2"), Command::Delete("a")};
  StoppingSink sink(2);
  EXPECT_EQ(executor_.Execute(Frontend::kFastPath, batch, sink), 2u);
  EXPECT_THAT(Codes(sink.results), ElementsAre(ResultCode::kOk, ResultCode::kHit));
  // The commands after the stop had no effect and were not counted.
  ASSERT_EQ(metrics_.batches.size(), 1u);
  EXPECT_EQ(metrics_.batches[0].commands, 2u);
  EXPECT_THAT(Codes(Run({Command::Get("b"), Command::Get("a")})),
              ElementsAre(ResultCode::kMiss, ResultCode::kHit));
  // Without a stop request the whole batch runs.
  RecordingSink all;
  EXPECT_EQ(executor_.Execute(Frontend::kFastPath, batch, all), batch.size());
}

TEST(CommandTableTest, NamesAndIdsAgree) {
  for (const CommandSpec& spec : CommandTable()) {
    EXPECT_EQ(&LookupCommand(spec.id), &spec);
    EXPECT_EQ(CommandIdFromName(spec.name), spec.id);
    EXPECT_NE(spec.handler, nullptr);
  }
  EXPECT_EQ(CommandIdFromName("DEL"), CommandId::kDelete);
  EXPECT_EQ(CommandIdFromName("put"), CommandId::kSet);
  EXPECT_EQ(CommandIdFromName("flushall"), std::nullopt);
}

TEST(OutcomeTest, MapsEveryResultCode) {
  EXPECT_EQ(OutcomeOf(ResultCode::kHit), Outcome::kHit);
  EXPECT_EQ(OutcomeOf(ResultCode::kMiss), Outcome::kMiss);
  EXPECT_EQ(OutcomeOf(ResultCode::kNotFound), Outcome::kMiss);
  EXPECT_EQ(OutcomeOf(ResultCode::kError), Outcome::kError);
  for (ResultCode c : {ResultCode::kOk, ResultCode::kPong, ResultCode::kTtl, ResultCode::kStats}) {
    EXPECT_EQ(OutcomeOf(c), Outcome::kOk);
  }
  EXPECT_EQ(FrontendName(Frontend::kGrpc), "grpc");
  EXPECT_EQ(FrontendName(Frontend::kFastPath), "fastpath");
}

}  // namespace
}  // namespace crabcache::core
