// TLS for the gRPC port: which files, their checks, and the in-memory copy gRPC reads.
//
// gRPC 1.51's FileWatcherCertificateProvider re-reads files by path on a timer and loads whatever
// they hold; it offers no way to force a re-read and no check that the key matches the
// certificate. So gRPC is not pointed at the operator's files. TlsMaterial reads those files,
// checks them (the chain parses, the key matches the leaf, the client CA bundle parses) and
// publishes the checked bytes in memfds (memory only, never on disk) that gRPC watches through
// /proc/self/fd/N every kGrpcRefreshSeconds. A reload (SIGHUP, or a change on disk noticed by the
// server's file watcher) re-reads and re-checks the files and swaps the memfds atomically
// (dup3 onto the same descriptor numbers); files that fail the check are refused and the last
// good certificate keeps serving. New handshakes use a new certificate within
// kGrpcRefreshSeconds; established connections keep theirs.
#ifndef CRABCACHE_SERVICE_TLS_H_
#define CRABCACHE_SERVICE_TLS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"

namespace crabcache::service {

// How often gRPC looks at the published copy (cheap: three small in-memory files).
inline constexpr unsigned kGrpcRefreshSeconds = 1;

struct TlsFiles {
  std::string cert;       // PEM certificate chain, leaf first. Empty: no TLS.
  std::string key;        // PEM private key of the leaf certificate.
  std::string client_ca;  // PEM CA bundle; non-empty: clients must present a certificate it signed.
  bool enabled() const { return !cert.empty(); }
};

struct TlsSummary {
  std::string subject;    // Of the leaf certificate.
  std::string not_after;  // Its expiry, as OpenSSL prints it.
  bool expired = false;
  int chain_length = 0;
  int client_cas = 0;  // Certificates in the client CA bundle.
};

// The files' bytes, checked.
struct TlsBundle {
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;  // Empty without a client CA.
  TlsSummary summary;
};

// Reads and checks the files the way the TLS handshake will use them: the chain parses and has
// at least one certificate, the key parses (unencrypted) and matches the leaf, the client CA
// bundle (if set) has at least one certificate. kNotFound for a missing file, kInvalidArgument
// otherwise, naming the file and the problem.
absl::StatusOr<TlsBundle> LoadTlsFiles(const TlsFiles& files);

// The checked copy gRPC reads (see the file comment).
//
// Thread-safety: Reload may be called from any thread (calls are serialised); the paths are
// immutable. Ownership: owns its memfds; must outlive the gRPC server that reads them.
class TlsMaterial {
 public:
  // Loads and checks `files` and publishes them; fails like LoadTlsFiles, or kInternal if no
  // memfd can be made.
  static absl::StatusOr<std::unique_ptr<TlsMaterial>> Create(const TlsFiles& files);
  ~TlsMaterial();
  TlsMaterial(const TlsMaterial&) = delete;
  TlsMaterial& operator=(const TlsMaterial&) = delete;

  // Re-reads and checks the files. Valid and different: published (gRPC switches within
  // kGrpcRefreshSeconds); `changed` says whether the bytes differed. Invalid: the error, and the
  // published copy stays as it was.
  absl::StatusOr<TlsSummary> Reload(bool* changed = nullptr);

  // /proc/self/fd/N paths for gRPC's FileWatcherCertificateProvider. ca_path is empty without a
  // client CA.
  const std::string& key_path() const { return key_path_; }
  const std::string& cert_path() const { return cert_path_; }
  const std::string& ca_path() const { return ca_path_; }
  const TlsSummary& initial_summary() const { return initial_summary_; }

 private:
  TlsMaterial(const TlsFiles& files, int key_fd, int cert_fd, int ca_fd, TlsSummary summary);
  absl::Status Publish(const TlsBundle& bundle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Immutable after construction.
  const TlsFiles files_;
  const int key_fd_;
  const int cert_fd_;
  const int ca_fd_;  // -1 without a client CA.
  const std::string key_path_;
  const std::string cert_path_;
  const std::string ca_path_;
  const TlsSummary initial_summary_;

  core::Mutex mu_;
  // SHA-256 of what is published (not a second copy of the key), to tell whether a reload
  // changed anything.
  std::string published_digest_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_TLS_H_
