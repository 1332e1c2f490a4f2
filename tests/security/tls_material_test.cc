// TlsMaterial in process (so ASan sees the OpenSSL checks and the memfd swaps): certificates are
// made by the openssl command at test time.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/tls.h"

namespace crabcache::service {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class TlsMaterialTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir_template[] = "/tmp/tls_material_test.XXXXXX";
    dir_ = new std::string(mkdtemp(dir_template));
    // One self-signed certificate per name, each with its own EC key.
    for (const char* name : {"one", "two"}) {
      const std::string base = *dir_ + "/" + name;
      const std::string command =
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "
          "/CN=" +
          std::string(name) + " -keyout " + base + ".key -out " + base + ".crt >/dev/null 2>&1";
      ASSERT_EQ(system(command.c_str()), 0) << command;
    }
  }
  static void TearDownTestSuite() {
    (void)!system(("rm -rf " + *dir_).c_str());
    delete dir_;
  }

  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }
  static void Copy(const std::string& from, const std::string& to) {
    std::ofstream(Path(to)) << Slurp(Path(from));
  }

  static std::string* dir_;
};
std::string* TlsMaterialTest::dir_ = nullptr;

TEST_F(TlsMaterialTest, PublishesCheckedCopiesAndRefusesBadReloads) {
  Copy("one.crt", "live.crt");
  Copy("one.key", "live.key");
  Copy("one.crt", "ca.crt");
  auto material = TlsMaterial::Create(
      {.cert = Path("live.crt"), .key = Path("live.key"), .client_ca = Path("ca.crt")});
  ASSERT_TRUE(material.ok()) << material.status();
  TlsMaterial& m = **material;
  EXPECT_THAT(m.initial_summary().subject, HasSubstr("CN=one"));
  EXPECT_FALSE(m.initial_summary().expired);
  EXPECT_EQ(m.initial_summary().client_cas, 1);
  EXPECT_EQ(Slurp(m.cert_path()), Slurp(Path("one.crt")));
  EXPECT_EQ(Slurp(m.key_path()), Slurp(Path("one.key")));
  EXPECT_EQ(Slurp(m.ca_path()), Slurp(Path("one.crt")));

  bool changed = true;
  ASSERT_TRUE(m.Reload(&changed).ok());
  EXPECT_FALSE(changed);

  // A new certificate whose key has not arrived yet: refused, the old pair stays published.
  Copy("two.crt", "live.crt");
  absl::StatusOr<TlsSummary> refused = m.Reload(&changed);
  EXPECT_THAT(refused.status().message(), HasSubstr("does not match"));
  EXPECT_EQ(Slurp(m.cert_path()), Slurp(Path("one.crt")));
  EXPECT_EQ(Slurp(m.key_path()), Slurp(Path("one.key")));

  Copy("two.key", "live.key");
  absl::StatusOr<TlsSummary> taken = m.Reload(&changed);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_TRUE(changed);
  EXPECT_THAT(taken->subject, HasSubstr("CN=two"));
  EXPECT_EQ(Slurp(m.cert_path()), Slurp(Path("two.crt")));
  EXPECT_EQ(Slurp(m.key_path()), Slurp(Path("two.key")));

  unlink(Path("live.key").c_str());
  EXPECT_EQ(m.Reload().status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Slurp(m.key_path()), Slurp(Path("two.key")));
}

TEST_F(TlsMaterialTest, StartUpRefusals) {
  EXPECT_THAT(
      TlsMaterial::Create({.cert = Path("one.crt"), .key = Path("two.key")}).status().message(),
      HasSubstr("does not match"));
  EXPECT_THAT(
      TlsMaterial::Create({.cert = Path("one.key"), .key = Path("one.key")}).status().message(),
      HasSubstr("no PEM certificate"));
  EXPECT_THAT(
      TlsMaterial::Create({.cert = Path("one.crt"), .key = Path("one.crt")}).status().message(),
      HasSubstr("no unencrypted PEM private key"));
  EXPECT_EQ(
      TlsMaterial::Create({.cert = Path("missing.crt"), .key = Path("one.key")}).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_THAT(TlsMaterial::Create(
                  {.cert = Path("one.crt"), .key = Path("one.key"), .client_ca = Path("one.key")})
                  .status()
                  .message(),
              HasSubstr("--tls_client_ca"));
}

}  // namespace
}  // namespace crabcache::service
