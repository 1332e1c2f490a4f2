#include "fastpath/buffer.h"

#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace crabcache::fastpath {
namespace {

TEST(BufferTest, StartsEmptyWithoutAllocating) {
  Buffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_EQ(b.view(), "");
}

TEST(BufferTest, AppendConsumeKeepsOrder) {
  Buffer b;
  b.Append("hello ");
  b.Append("world");
  b.AppendByte('!');
  EXPECT_EQ(b.view(), "hello world!");
  b.Consume(6);
  EXPECT_EQ(b.view(), "world!");
  b.Consume(6);
  EXPECT_TRUE(b.empty());
  EXPECT_GT(b.capacity(), 0u);  // Consuming everything keeps the block for reuse.
}

TEST(BufferTest, ReserveThenCommit) {
  Buffer b;
  char* p = b.Reserve(3);
  EXPECT_GE(b.tail_room(), 3u);
  p[0] = 'a';
  p[1] = 'b';
  p[2] = 'c';
  b.Commit(3);
  EXPECT_EQ(b.view(), "abc");
}

TEST(BufferTest, GrowsGeometricallyAndKeepsBytes) {
  Buffer b;
  std::string expect;
  size_t reallocations = 0;
  size_t last_capacity = 0;
  for (int i = 0; i < 100000; ++i) {
    const char c = static_cast<char>('a' + i % 26);
    b.AppendByte(c);
    expect.push_back(c);
    if (b.capacity() != last_capacity) {
      ++reallocations;
      last_capacity = b.capacity();
    }
  }
  EXPECT_EQ(b.view(), expect);
  EXPECT_LT(reallocations, 20u);
}

TEST(BufferTest, ReclaimsConsumedFrontBeforeGrowing) {
  Buffer b;
  b.Reserve(1000);
  const size_t cap = b.capacity();
  b.Append(std::string(cap, 'x'));
  b.Consume(cap - 10);  // 10 live bytes at the very end.
  b.Append(std::string(cap / 2, 'y'));
  EXPECT_EQ(b.capacity(), cap);  // Slid down rather than reallocated.
  EXPECT_EQ(b.view(), std::string(10, 'x') + std::string(cap / 2, 'y'));
}

TEST(BufferTest, ReleaseFreesTheBlock) {
  Buffer b;
  b.Append("abc");
  b.Release();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.capacity(), 0u);
  b.Append("d");
  EXPECT_EQ(b.view(), "d");
}

TEST(BufferTest, SwapAndMove) {
  Buffer a, b;
  a.Append("aaa");
  b.Append("b");
  a.Swap(b);
  EXPECT_EQ(a.view(), "b");
  EXPECT_EQ(b.view(), "aaa");
  Buffer c(std::move(b));
  EXPECT_EQ(c.view(), "aaa");
  EXPECT_EQ(b.capacity(), 0u);  // NOLINT: moved-from state is defined (empty).
  a = std::move(c);
  EXPECT_EQ(a.view(), "aaa");
}

TEST(BufferTest, HoldsArbitraryBytes) {
  Buffer b;
  const std::string bytes("\0\x01\xff\0", 4);
  b.Append(bytes);
  EXPECT_EQ(b.view(), bytes);
}

}  // namespace
}  // namespace crabcache::fastpath
