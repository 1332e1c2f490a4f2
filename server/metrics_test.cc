#include "server/metrics.h"

#include <thread>

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace crabcache::server {
namespace {

std::string Scrape(const Metrics& m) { return prometheus::TextSerializer().Serialize(m.Collect()); }

core::BatchMetrics Batch(core::Frontend fe, uint32_t gets_hit, uint32_t gets_miss, uint32_t sets,
                         uint64_t latency_ns) {
  core::BatchMetrics b;
  b.frontend = fe;
  b.commands = gets_hit + gets_miss + sets;
  b.latency_ns = latency_ns;
  if (gets_hit != 0) b.Add(core::CommandId::kGet, core::Outcome::kHit, gets_hit);
  if (gets_miss != 0) b.Add(core::CommandId::kGet, core::Outcome::kMiss, gets_miss);
  if (sets != 0) b.Add(core::CommandId::kSet, core::Outcome::kOk, sets);
  return b;
}

TEST(MetricsTest, CountsCommandsByFrontendCommandAndOutcome) {
  Metrics m("1.2.3", "abc123");
  m.RecordBatch(Batch(core::Frontend::kFastPath, 3, 1, 2, 1500));
  m.RecordBatch(Batch(core::Frontend::kGrpc, 0, 0, 64, 40'000));
  const std::string text = Scrape(m);
  EXPECT_NE(text.find("crabcache_commands_total{command=\"get\",frontend=\"fastpath\",outcome="
                      "\"hit\"} 3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("crabcache_commands_total{command=\"get\",frontend=\"fastpath\",outcome="
                      "\"miss\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("crabcache_commands_total{command=\"set\",frontend=\"grpc\",outcome=\"ok\"} "
                      "64"),
            std::string::npos);
  EXPECT_NE(text.find("crabcache_batch_commands_count{frontend=\"grpc\"} 1"), std::string::npos);
  EXPECT_NE(text.find("crabcache_batch_commands_sum{frontend=\"fastpath\"} 6"), std::string::npos);
  EXPECT_NE(text.find("crabcache_batch_commands_bucket{frontend=\"grpc\",le=\"32\"} 0"),
            std::string::npos);
  EXPECT_NE(text.find("crabcache_batch_commands_bucket{frontend=\"grpc\",le=\"64\"} 1"),
            std::string::npos);
  EXPECT_NE(
      text.find("crabcache_batch_duration_seconds_bucket{frontend=\"fastpath\",le=\"2.5e-06\"}"
                " 1"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("crabcache_build_info{commit=\"abc123\",version=\"1.2.3\"} 1"),
            std::string::npos);
}

// A value equal to a bucket's bound is counted in that bucket ("le"), one above it in the next;
// past the last bound it is only in +Inf.
TEST(MetricsTest, HistogramBucketEdges) {
  Metrics m("v", "c");
  m.RecordBatch(Batch(core::Frontend::kFastPath, 16, 0, 0, 2500));            // le=16, le=2.5e-06
  m.RecordBatch(Batch(core::Frontend::kFastPath, 17, 0, 0, 2501));            // le=32, le=5e-06
  m.RecordBatch(Batch(core::Frontend::kFastPath, 16385, 0, 0, 200'000'000));  // +Inf, +Inf
  const std::string text = Scrape(m);
  for (const char* line : {
           "crabcache_batch_commands_bucket{frontend=\"fastpath\",le=\"8\"} 0",
           "crabcache_batch_commands_bucket{frontend=\"fastpath\",le=\"16\"} 1",
           "crabcache_batch_commands_bucket{frontend=\"fastpath\",le=\"32\"} 2",
           "crabcache_batch_commands_bucket{frontend=\"fastpath\",le=\"16384\"} 2",
           "crabcache_batch_commands_bucket{frontend=\"fastpath\",le=\"+Inf\"} 3",
           "crabcache_batch_duration_seconds_bucket{frontend=\"fastpath\",le=\"2.5e-06\"} 1",
           "crabcache_batch_duration_seconds_bucket{frontend=\"fastpath\",le=\"5e-06\"} 2",
           "crabcache_batch_duration_seconds_bucket{frontend=\"fastpath\",le=\"0.1\"} 2",
           "crabcache_batch_duration_seconds_bucket{frontend=\"fastpath\",le=\"+Inf\"} 3",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST(MetricsTest, ScrapeTimeSourcesAndStore) {
  Metrics m("v", "c");
  double open = 7;
  m.AddGauge("crabcache_connections_open", "Open connections.", {{"frontend", "fastpath"}},
             [&] { return open; });
  m.AddGauge("crabcache_connections_open", "Open connections.", {{"frontend", "grpc"}},
             [] { return 2.0; });
  core::Store store(core::StoreOptions{.num_shards = 2, .max_memory_bytes = 1 << 20});
  (void)store.Set("k", store.Hash("k"), "v", core::kNoExpiry, store.Now());
  m.AddStore(&store);
  open = 9;
  const std::string text = Scrape(m);
  EXPECT_NE(text.find("crabcache_connections_open{frontend=\"fastpath\"} 9"), std::string::npos)
      << text;
  EXPECT_NE(text.find("crabcache_connections_open{frontend=\"grpc\"} 2"), std::string::npos);
  EXPECT_EQ(text.find("# TYPE crabcache_connections_open gauge"),
            text.rfind("# TYPE crabcache_connections_open gauge"))
      << "one family per name";
  EXPECT_NE(text.find("crabcache_keys 1"), std::string::npos);
  EXPECT_NE(text.find("crabcache_memory_limit_bytes 1048576"), std::string::npos);
  EXPECT_NE(text.find("crabcache_evictions_total{policy=\"s3fifo\"} 0"), std::string::npos);
  EXPECT_NE(text.find("crabcache_expirations_total{policy=\"s3fifo\"} 0"), std::string::npos);
}

TEST(MetricsTest, ConcurrentRecordingLosesNothing) {
  Metrics m("v", "c");
  constexpr int kThreads = 4, kBatches = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kBatches; ++i)
        m.RecordBatch(Batch(core::Frontend::kFastPath, 1, 0, 0, 10));
    });
  }
  std::thread scraper([&] {
    for (int i = 0; i < 20; ++i) (void)m.Collect();
  });
  for (auto& t : threads) t.join();
  scraper.join();
  EXPECT_NE(Scrape(m).find("outcome=\"hit\"} 80000"), std::string::npos);
}

TEST(MetricsTest, CountsOfExitedThreadsSurviveAndBlocksAreReused) {
  Metrics m("v", "c");
  // 200 short-lived threads, one at a time: each records, exits and hands its block back.
  for (int i = 0; i < 200; ++i) {
    std::thread([&] { m.RecordBatch(Batch(core::Frontend::kGrpc, 0, 0, 2, 10)); }).join();
  }
  EXPECT_NE(Scrape(m).find("crabcache_commands_total{command=\"set\",frontend=\"grpc\","
                           "outcome=\"ok\"} 400"),
            std::string::npos);
  EXPECT_NE(Scrape(m).find("crabcache_batch_commands_count{frontend=\"grpc\"} 200"),
            std::string::npos);
}

TEST(MetricsTest, TwoInstancesInOneThreadStayApart) {
  Metrics a("v", "c");
  Metrics b("v", "c");
  a.RecordBatch(Batch(core::Frontend::kFastPath, 1, 0, 0, 10));
  b.RecordBatch(Batch(core::Frontend::kFastPath, 5, 0, 0, 10));
  a.RecordBatch(Batch(core::Frontend::kFastPath, 1, 0, 0, 10));
  EXPECT_NE(Scrape(a).find("outcome=\"hit\"} 2"), std::string::npos) << Scrape(a);
  EXPECT_NE(Scrape(b).find("outcome=\"hit\"} 5"), std::string::npos) << Scrape(b);
}

}  // namespace
}  // namespace crabcache::server
