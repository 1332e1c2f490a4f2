#include "fastpath/token_store.h"

#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fastpath/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crabcache::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// FIPS 180-2 appendix B test vectors.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(ToHex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(ToHex(Sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Lengths 0..130 cross every padding boundary (55/56 and 119/120 bytes switch between one and
// two final blocks); each is checked against coreutils' sha256sum.
TEST(Sha256Test, MatchesSha256sumAtEveryLengthAroundTheBlockSize) {
  for (size_t n = 0; n <= 130; ++n) {
    const std::string data(n, static_cast<char>('a' + n % 26));
    char path[] = "/tmp/sha256_test.XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    close(fd);
    const std::string command = std::string("sha256sum ") + path;
    FILE* p = popen(command.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char out[65] = {};
    ASSERT_EQ(fread(out, 1, 64, p), 64u);
    pclose(p);
    unlink(path);
    EXPECT_EQ(ToHex(Sha256(data)), std::string(out, 64)) << "length " << n;
  }
}

TEST(ParseTokenFileTest, LinesCommentsAndWhitespace) {
  auto tokens = ParseTokenFile(
      "# rotation: new token first\n"
      "\n"
      "  new-token-0123456789  \r\n"
      "\t# old one, remove after the rollout\n"
      "old-token-0123456789\n"
      "last-token-without-newline");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_THAT(*tokens, ElementsAre("new-token-0123456789", "old-token-0123456789",
                                   "last-token-without-newline"));
}

TEST(ParseTokenFileTest, RejectsBadFiles) {
  EXPECT_THAT(ParseTokenFile("").status().message(), HasSubstr("no token"));
  EXPECT_THAT(ParseTokenFile("# only a comment\n\n  \n").status().message(), HasSubstr("no token"));
  EXPECT_THAT(ParseTokenFile("good-token-0123456789\nshort\n").status().message(),
              HasSubstr("line 2: token shorter than 16"));
  EXPECT_THAT(ParseTokenFile("with space inside token\n").status().message(),
              HasSubstr("line 1: tokens are printable ASCII"));
  EXPECT_THAT(ParseTokenFile(std::string("nul\0byte-in-the-token", 21)).status().message(),
              HasSubstr("byte 0x00"));
  EXPECT_THAT(ParseTokenFile(std::string(kMaxTokenBytes + 1, 'x')).status().message(),
              HasSubstr("longer than 4096"));
  std::string many;
  for (size_t i = 0; i <= kMaxTokens; ++i)
    many += "token-number-" + std::to_string(1000 + i) + "\n";
  EXPECT_THAT(ParseTokenFile(many).status().message(), HasSubstr("more than 64 tokens"));
  EXPECT_THAT(ParseTokenFile(std::string(kMaxTokenFileBytes + 1, '#')).status().message(),
              HasSubstr("larger than"));
}

TEST(ConstantTimeContainsTest, FindsOnlyExactDigests) {
  const std::vector<Digest> digests = {Sha256("a"), Sha256("b"), Sha256("c")};
  EXPECT_TRUE(ConstantTimeContains(digests, Sha256("a")));
  EXPECT_TRUE(ConstantTimeContains(digests, Sha256("c")));
  EXPECT_FALSE(ConstantTimeContains(digests, Sha256("d")));
  EXPECT_FALSE(ConstantTimeContains({}, Sha256("a")));
  // One differing bit anywhere is a mismatch.
  for (size_t byte = 0; byte < 32; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      Digest probe = Sha256("b");
      probe[byte] ^= static_cast<uint8_t>(1 << bit);
      EXPECT_FALSE(ConstantTimeContains(digests, probe)) << byte << ":" << bit;
    }
  }
}

TEST(TokenStoreTest, CheckAndRevocation) {
  TokenStore store;
  EXPECT_FALSE(store.Check("anything-at-all-here"));  // No token configured: nobody gets in.
  ASSERT_TRUE(store.Replace({"first-token-0123456789", "second-token-0123456789"}).ok());
  EXPECT_EQ(store.size(), 2u);
  Grant grant;
  EXPECT_TRUE(store.Check("second-token-0123456789", &grant));
  EXPECT_FALSE(store.Check("second-token-012345678"));    // A prefix.
  EXPECT_FALSE(store.Check("second-token-01234567890"));  // An extension.
  EXPECT_FALSE(store.Check(""));
  EXPECT_TRUE(store.StillValid(&grant));

  // Rotation keeps the grant while its token stays, and revokes it once the token is gone.
  ASSERT_TRUE(store.Replace({"second-token-0123456789", "third-token-0123456789"}).ok());
  EXPECT_TRUE(store.StillValid(&grant));
  ASSERT_TRUE(store.Replace({"third-token-0123456789"}).ok());
  EXPECT_FALSE(store.StillValid(&grant));
  EXPECT_FALSE(store.StillValid(&grant));  // Stays revoked.
  EXPECT_FALSE(store.Check("first-token-0123456789"));

  // A bad replacement keeps the old tokens.
  EXPECT_FALSE(store.Replace({}).ok());
  EXPECT_FALSE(store.Replace({"short"}).ok());
  EXPECT_TRUE(store.Check("third-token-0123456789"));
}

TEST(TokenStoreTest, LoadFileKeepsOldTokensOnFailure) {
  char dir_template[] = "/tmp/token_store_test.XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string path = dir + "/tokens";
  std::ofstream(path) << "# tokens\nfile-token-0123456789\n";
  TokenStore store;
  ASSERT_TRUE(store.LoadFile(path).ok());
  EXPECT_TRUE(store.Check("file-token-0123456789"));
  const uint64_t generation = store.generation();

  std::ofstream(path) << "# emptied by mistake\n";
  absl::Status s = store.LoadFile(path);
  EXPECT_THAT(s.message(), HasSubstr("no token"));
  EXPECT_TRUE(store.Check("file-token-0123456789"));
  EXPECT_EQ(store.generation(), generation);

  EXPECT_FALSE(store.LoadFile(dir + "/missing").ok());
  EXPECT_FALSE(store.LoadFile(dir).ok());  // A directory.
  EXPECT_TRUE(store.Check("file-token-0123456789"));

  std::ofstream(path) << "new-file-token-0123456789\n";
  ASSERT_TRUE(store.LoadFile(path).ok());
  EXPECT_FALSE(store.Check("file-token-0123456789"));
  EXPECT_TRUE(store.Check("new-file-token-0123456789"));
  unlink(path.c_str());
  rmdir(dir.c_str());
}

// Readers never see a torn set while a writer rotates (TSan checks the synchronisation).
TEST(TokenStoreTest, ConcurrentChecksDuringRotation) {
  TokenStore store;
  ASSERT_TRUE(store.Replace({"stable-token-0123456789", "rotating-0000000000000"}).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      Grant grant;
      if (!store.Check("stable-token-0123456789", &grant)) failures++;
      while (!stop.load()) {
        if (!store.Check("stable-token-0123456789")) failures++;
        if (!store.StillValid(&grant)) failures++;
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(
        store.Replace({"stable-token-0123456789", "rotating-" + std::to_string(1000000000000 + i)})
            .ok());
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace crabcache::auth
