#include "server/process_metrics.h"

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace crabcache::server {
namespace {

TEST(ParseProcStatTest, CommandWithSpacesAndParentheses) {
  // Fields 1..24 of proc(5); comm is "(a b) c)".
  const std::string stat =
      "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 1000 "
      "81920000 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  auto s = ParseProcStat(stat, 100, 1'700'000'000, 4096);
  ASSERT_TRUE(s.has_value());
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 3.0);  // (250 + 50) / 100.
  EXPECT_DOUBLE_EQ(s->start_time_seconds, 1'700'000'010.0);
  EXPECT_EQ(s->virtual_bytes, 81920000u);
  EXPECT_EQ(s->resident_bytes, 2048u * 4096u);
}

TEST(ParseProcStatTest, RejectsTruncatedInput) {
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2 3", 100, 0, 4096).has_value());
  EXPECT_FALSE(ParseProcStat("garbage", 100, 0, 4096).has_value());
  EXPECT_FALSE(ParseProcStat("", 100, 0, 4096).has_value());
}

TEST(ProcessMetricsTest, ExportsThisProcess) {
  Metrics m("v", "c");
  AddProcessMetrics(&m);
  const std::string text = prometheus::TextSerializer().Serialize(m.Collect());
  for (const char* name : {"process_resident_memory_bytes", "process_virtual_memory_bytes",
                           "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + name), std::string::npos) << name;
  }
  // A live process has resident pages; a zero would mean the parse silently failed.
  EXPECT_EQ(text.find("process_resident_memory_bytes 0\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace crabcache::server
