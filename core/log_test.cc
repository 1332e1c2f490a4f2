#include "core/log.h"

#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

TEST(LogTest, TextLineIsOneLineWithQuotedValues) {
  const std::string line = FormatLogLine(LogFormat::kText, LogLevel::kInfo, "listening",
                                         {{"addr", "0.0.0.0:8000"}, {"note", "two words\n"}});
  EXPECT_NE(line.find(" INFO listening addr=0.0.0.0:8000 note=\"two words\\n\"\n"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(LogTest, JsonLineEscapes) {
  const std::string line = FormatLogLine(LogFormat::kJson, LogLevel::kError, "bad \"x\"",
                                         {{"k", std::string("\x01", 1)}});
  EXPECT_EQ(line.rfind("{\"ts\":\"", 0), 0u) << line;
  EXPECT_NE(line.find("\"level\":\"error\",\"msg\":\"bad \\\"x\\\"\",\"k\":\"\\u0001\"}\n"),
            std::string::npos)
      << line;
}

TEST(LogTest, ParsesLevelsAndFormats) {
  LogLevel level;
  LogFormat format;
  ASSERT_TRUE(ParseLogLevel("WARNING", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  EXPECT_FALSE(ParseLogLevel("loud", &level));
  ASSERT_TRUE(ParseLogFormat("json", &format));
  EXPECT_EQ(format, LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml", &format));
}

TEST(LogTest, LevelFilters) {
  SetLogLevel(LogLevel::kWarning);
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  SetLogLevel(LogLevel::kInfo);
}

}  // namespace
}  // namespace crabcache::core
