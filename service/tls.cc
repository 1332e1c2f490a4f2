#include "service/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

namespace crabcache::service {
namespace {

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

absl::StatusOr<BioPtr> Open(const std::string& what, const std::string& path) {
  errno = 0;
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    ERR_clear_error();
    const std::string why = errno != 0 ? std::strerror(errno) : "cannot open";
    return errno == ENOENT ? absl::NotFoundError(absl::StrCat(what, " ", path, ": ", why))
                           : absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": ", why));
  }
  return bio;
}

absl::StatusOr<std::vector<X509Ptr>> ReadCertificates(const std::string& what,
                                                      const std::string& path) {
  absl::StatusOr<BioPtr> bio = Open(what, path);
  if (!bio.ok()) return bio.status();
  std::vector<X509Ptr> certs;
  while (X509* x = PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  ERR_clear_error();  // The loop ends on "no start line".
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, ": no PEM certificate (BEGIN CERTIFICATE) found"));
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

}  // namespace

absl::StatusOr<TlsSummary> CheckTlsFiles(const TlsFiles& files) {
  if (files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key");
  }
  absl::StatusOr<std::vector<X509Ptr>> chain = ReadCertificates("--tls_cert", files.cert);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<BioPtr> key_bio = Open("--tls_key", files.key);
  if (!key_bio.ok()) return key_bio.status();
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio->get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key ", files.key,
                     ": no unencrypted PEM private key found (encrypted keys are not "
                     "supported)"));
  }
  X509* leaf = chain->front().get();
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_key ", files.key, " does not match the certificate in --tls_cert ", files.cert));
  }
  TlsSummary summary;
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
    absl::StatusOr<std::vector<X509Ptr>> cas = ReadCertificates("--tls_client_ca", files.client_ca);
    if (!cas.ok()) return cas.status();
    summary.client_cas = static_cast<int>(cas->size());
  }
  return summary;
}

}  // namespace crabcache::service
