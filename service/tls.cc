#include "service/tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fastpath/sha256.h"

namespace crabcache::service {
namespace {

// PEM files are small; anything bigger is a mistake (or an attack on start-up).
constexpr size_t kMaxPemBytes = 1 << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const std::string message = absl::StrCat(flag, " ", path, ": ", std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
  }
  std::string out;
  char buf[16 << 10];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxPemBytes) break;
  }
  close(fd);
  explicit_bzero(buf, sizeof(buf));
  if (out.size() > kMaxPemBytes) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": larger than 1 MiB"));
  }
  return out;
}

BioPtr MemBio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(const std::string& flag,
                                                       const std::string& path,
                                                       const std::string& pem) {
  BioPtr bio = MemBio(pem);
  std::vector<X509Ptr> certs;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  ERR_clear_error();  // The loop ends on "no start line".
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, ": no PEM certificate (BEGIN CERTIFICATE) found"));
  }
  return certs;
}

std::string Print(int (*print)(BIO*, const void*), const void* what) {
  BioPtr mem(BIO_new(BIO_s_mem()));
  if (mem == nullptr || print(mem.get(), what) <= 0) return "?";
  char* data = nullptr;
  const long n = BIO_get_mem_data(mem.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// A memfd holding `data`, or -1.
// dup3(from, to), retried while interrupted or racing an open() of `to` (EBUSY).
absl::Status Replace(int from, int to) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (dup3(from, to, O_CLOEXEC) >= 0) return absl::OkStatus();
    if (errno != EINTR && errno != EBUSY) break;
  }
  return absl::InternalError(absl::StrCat("dup3 for the TLS files: ", std::strerror(errno)));
}

int NewMemfd(const std::string& data) {
  const int fd = memfd_create("crabcache-tls", MFD_CLOEXEC);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return -1;
    }
    done += static_cast<size_t>(n);
  }
  return fd;
}

std::string FdPath(int fd) { return fd < 0 ? "" : absl::StrCat("/proc/self/fd/", fd); }

// Identifies the published bytes without keeping a second copy of the key.
std::string DigestOf(const TlsBundle& b) {
  std::string all = absl::StrCat(b.cert_pem, "\n--\n", b.key_pem, "\n--\n", b.client_ca_pem);
  const std::string digest = auth::ToHex(auth::Sha256(all));
  explicit_bzero(all.data(), all.size());
  return digest;
}

}  // namespace

absl::StatusOr<TlsBundle> LoadTlsFiles(const TlsFiles& files) {
  if (files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key");
  }
  TlsBundle bundle;
  absl::StatusOr<std::string> cert = ReadFile("--tls_cert", files.cert);
  if (!cert.ok()) return cert.status();
  bundle.cert_pem = *std::move(cert);
  absl::StatusOr<std::vector<X509Ptr>> chain =
      ParseCertificates("--tls_cert", files.cert, bundle.cert_pem);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<std::string> key = ReadFile("--tls_key", files.key);
  if (!key.ok()) return key.status();
  bundle.key_pem = *std::move(key);
  BioPtr key_bio = MemBio(bundle.key_pem);
  KeyPtr pkey(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key ", files.key,
                     ": no unencrypted PEM private key found (encrypted keys are not supported)"));
  }
  X509* leaf = chain->front().get();
  if (X509_check_private_key(leaf, pkey.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_key ", files.key, " does not match the certificate in --tls_cert ", files.cert));
  }
  TlsSummary& summary = bundle.summary;
  summary.chain_length = static_cast<int>(chain->size());
  summary.subject = Print(
      [](BIO* b, const void* x) {
        return X509_NAME_print_ex(b, X509_get_subject_name(static_cast<const X509*>(x)), 0,
                                  XN_FLAG_RFC2253);
      },
      leaf);
  summary.not_after = Print(
      [](BIO* b, const void* x) {
        return ASN1_TIME_print(b, X509_get0_notAfter(static_cast<const X509*>(x)));
      },
      leaf);
  summary.expired = X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0;
  if (!files.client_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadFile("--tls_client_ca", files.client_ca);
    if (!ca.ok()) return ca.status();
    bundle.client_ca_pem = *std::move(ca);
    absl::StatusOr<std::vector<X509Ptr>> cas =
        ParseCertificates("--tls_client_ca", files.client_ca, bundle.client_ca_pem);
    if (!cas.ok()) return cas.status();
    summary.client_cas = static_cast<int>(cas->size());
  }
  return bundle;
}

absl::StatusOr<std::unique_ptr<TlsMaterial>> TlsMaterial::Create(const TlsFiles& files) {
  absl::StatusOr<TlsBundle> bundle = LoadTlsFiles(files);
  if (!bundle.ok()) return bundle.status();
  const int key_fd = NewMemfd(bundle->key_pem);
  const int cert_fd = NewMemfd(bundle->cert_pem);
  const int ca_fd = files.client_ca.empty() ? -2 : NewMemfd(bundle->client_ca_pem);
  if (key_fd < 0 || cert_fd < 0 || ca_fd == -1) {
    const std::string why = std::strerror(errno);
    for (int fd : {key_fd, cert_fd, ca_fd}) {
      if (fd >= 0) close(fd);
    }
    return absl::InternalError(absl::StrCat("memfd_create for the TLS files: ", why));
  }
  std::unique_ptr<TlsMaterial> material(
      new TlsMaterial(files, key_fd, cert_fd, ca_fd < 0 ? -1 : ca_fd, bundle->summary));
  core::MutexLock lock(&material->mu_);
  material->published_digest_ = DigestOf(*bundle);
  explicit_bzero(bundle->key_pem.data(), bundle->key_pem.size());
  return material;
}

TlsMaterial::TlsMaterial(const TlsFiles& files, int key_fd, int cert_fd, int ca_fd,
                         TlsSummary summary)
    : files_(files),
      key_fd_(key_fd),
      cert_fd_(cert_fd),
      ca_fd_(ca_fd),
      key_path_(FdPath(key_fd)),
      cert_path_(FdPath(cert_fd)),
      ca_path_(FdPath(ca_fd)),
      initial_summary_(std::move(summary)) {}

TlsMaterial::~TlsMaterial() {
  for (int fd : {key_fd_, cert_fd_, ca_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::StatusOr<TlsSummary> TlsMaterial::Reload(bool* changed) {
  absl::StatusOr<TlsBundle> bundle = LoadTlsFiles(files_);
  if (!bundle.ok()) return bundle.status();
  core::MutexLock lock(&mu_);
  absl::Status published = Publish(*bundle);
  explicit_bzero(bundle->key_pem.data(), bundle->key_pem.size());
  if (changed != nullptr) *changed = published.ok();
  if (!published.ok() && published.code() != absl::StatusCode::kAlreadyExists) return published;
  return bundle->summary;
}

// Swaps in new memfds with the same descriptor numbers. Order: the key and the certificate are
// swapped one after the other; gRPC's reader stats both before and after reading both and
// retries when a modification time moved (each new memfd has its own), so it never pairs an old
// key with a new certificate. kAlreadyExists when nothing changed.
absl::Status TlsMaterial::Publish(const TlsBundle& bundle) {
  const std::string digest = DigestOf(bundle);
  if (digest == published_digest_) return absl::AlreadyExistsError("unchanged");
  const int key = NewMemfd(bundle.key_pem);
  const int cert = NewMemfd(bundle.cert_pem);
  const int ca = ca_fd_ < 0 ? -2 : NewMemfd(bundle.client_ca_pem);
  if (key < 0 || cert < 0 || ca == -1) {
    const std::string why = std::strerror(errno);
    for (int fd : {key, cert, ca}) {
      if (fd >= 0) close(fd);
    }
    return absl::InternalError(absl::StrCat("memfd_create for the TLS files: ", why));
  }
  // dup3 replaces the descriptor atomically: an open() of /proc/self/fd/N sees the old file or
  // the new one, complete either way. The published files are kept (dup) until all three are
  // swapped, so a failed swap puts back the ones already replaced: gRPC never sees a new key
  // with an old certificate because of it.
  const int targets[3] = {key_fd_, cert_fd_, ca >= 0 ? ca_fd_ : -1};
  const int fresh[3] = {key, cert, ca};
  int saved[3] = {-1, -1, -1};
  absl::Status status = absl::OkStatus();
  for (int i = 0; i < 3 && status.ok(); ++i) {
    if (targets[i] < 0) continue;
    saved[i] = fcntl(targets[i], F_DUPFD_CLOEXEC, 0);
    if (saved[i] < 0) status = absl::InternalError(absl::StrCat("dup: ", std::strerror(errno)));
  }
  int swapped = 0;
  for (; swapped < 3 && status.ok(); ++swapped) {
    if (targets[swapped] >= 0) status = Replace(fresh[swapped], targets[swapped]);
  }
  if (!status.ok()) {
    // Put back what was replaced (swapped - 1 failed); best effort, the error is reported.
    for (int i = 0; i + 1 < swapped; ++i) {
      if (targets[i] >= 0) (void)Replace(saved[i], targets[i]);
    }
  }
  for (int fd : {key, cert, ca, saved[0], saved[1], saved[2]}) {
    if (fd >= 0) close(fd);
  }
  if (!status.ok()) return status;
  published_digest_ = digest;
  return absl::OkStatus();
}

}  // namespace crabcache::service
