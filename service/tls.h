// TLS for the gRPC port: which files, and a check of them before gRPC is handed their paths.
//
// gRPC 1.51's FileWatcherCertificateProvider re-reads the files itself every refresh interval and
// swaps them in when their content changes (new handshakes use the new certificate; connections
// already up keep theirs). It loads whatever the files hold, so crabcached checks them here at
// start-up (a bad pair refuses to start) and whenever it sees them change (a bad pair is logged
// as an error). gRPC offers no call to force a re-read: SIGHUP only re-runs this check.
#ifndef CRABCACHE_SERVICE_TLS_H_
#define CRABCACHE_SERVICE_TLS_H_

#include <string>

#include "absl/status/statusor.h"

namespace crabcache::service {

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

// Reads and checks the files the way the TLS handshake will use them: the chain parses and has at
// least one certificate, the key parses and matches the leaf, the client CA bundle (if set) has at
// least one certificate. kInvalidArgument (or kNotFound for a missing file) naming the file and
// the problem.
absl::StatusOr<TlsSummary> CheckTlsFiles(const TlsFiles& files);

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_TLS_H_
