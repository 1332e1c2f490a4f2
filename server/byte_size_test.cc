#include "server/byte_size.h"

#include "gtest/gtest.h"

namespace crabcache::server {
namespace {

TEST(ByteSizeTest, ParsesPlainAndSuffixed) {
  EXPECT_EQ(ParseByteSize("0"), 0u);
  EXPECT_EQ(ParseByteSize("1048576"), 1048576u);
  EXPECT_EQ(ParseByteSize("64K"), 64u << 10);
  EXPECT_EQ(ParseByteSize("64Ki"), 64u << 10);
  EXPECT_EQ(ParseByteSize("64KiB"), 64u << 10);
  EXPECT_EQ(ParseByteSize("512mi"), 512u << 20);
  EXPECT_EQ(ParseByteSize("2Gi"), uint64_t{2} << 30);
  EXPECT_EQ(ParseByteSize("3GB"), uint64_t{3} << 30);
  EXPECT_EQ(ParseByteSize("1Ti"), uint64_t{1} << 40);
  EXPECT_EQ(ParseByteSize(" 7 "), 7u);
}

TEST(ByteSizeTest, RejectsGarbageAndOverflow) {
  for (const char* bad : {"", "Ki", "-1", "1.5Gi", "12x", "0x10", "Gi1", "18446744073709551616",
                          "17179869184Gi", "1 Gi"}) {
    EXPECT_FALSE(ParseByteSize(bad).has_value()) << bad;
  }
}

TEST(ByteSizeTest, FormatsExactly) {
  EXPECT_EQ(FormatByteSize(0), "0");
  EXPECT_EQ(FormatByteSize(1000), "1000");
  EXPECT_EQ(FormatByteSize(1024), "1Ki");
  EXPECT_EQ(FormatByteSize(1536), "1536");
  EXPECT_EQ(FormatByteSize(64u << 20), "64Mi");
  EXPECT_EQ(FormatByteSize(uint64_t{3} << 30), "3Gi");
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{4096}, uint64_t{12345} << 20}) {
    EXPECT_EQ(ParseByteSize(FormatByteSize(v)), v);
  }
}

TEST(ByteSizeTest, FlagMarshalling) {
  ByteSize size;
  std::string error;
  EXPECT_TRUE(AbslParseFlag("8Mi", &size, &error));
  EXPECT_EQ(size.bytes, 8u << 20);
  EXPECT_EQ(AbslUnparseFlag(size), "8Mi");
  EXPECT_FALSE(AbslParseFlag("lots", &size, &error));
  EXPECT_NE(error.find("byte count"), std::string::npos);
}

}  // namespace
}  // namespace crabcache::server
