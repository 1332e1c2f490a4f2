#include "service/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/log.h"

namespace crabcache::service {
namespace {

std::string HostPort(const std::string& address, int port) {
  const bool ipv6 = absl::StrContains(address, ':') && !absl::StartsWith(address, "[");
  return ipv6 ? absl::StrCat("[", address, "]:", port) : absl::StrCat(address, ":", port);
}

absl::Status Validate(const GrpcOptions& options) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("grpc port out of range: ", options.port));
  }
  if (options.health_port < -1 || options.health_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("health port out of range: ", options.health_port));
  }
  if (options.address.empty()) return absl::InvalidArgumentError("grpc address is empty");
  if (options.max_batch_commands == 0) {
    return absl::InvalidArgumentError("max_batch_commands must be positive");
  }
  if (options.max_message_bytes <= 0 || options.max_concurrent_streams <= 0) {
    return absl::InvalidArgumentError("max_message_bytes and max_concurrent_streams must be > 0");
  }
  if (options.max_connections == 0) {
    return absl::InvalidArgumentError("max_connections must be positive");
  }
  if (!options.tls.enabled() && !options.tls.client_ca.empty()) {
    return absl::InvalidArgumentError("a client CA (mutual TLS) needs a certificate and key");
  }
  return absl::OkStatus();
}

// Credentials of the main port: plaintext, TLS, or TLS that requires and verifies a client
// certificate signed by the client CA. gRPC reads the checked in-memory copy (service/tls.h).
std::shared_ptr<grpc::ServerCredentials> Credentials(const TlsMaterial* tls) {
  if (tls == nullptr) return grpc::InsecureServerCredentials();
  using grpc::experimental::FileWatcherCertificateProvider;
  auto provider = std::make_shared<FileWatcherCertificateProvider>(
      tls->key_path(), tls->cert_path(), tls->ca_path(), kGrpcRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (tls->ca_path().empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

void LogCertificate(const TlsSummary& summary, const std::string& message, bool mutual) {
  core::Log(summary.expired ? core::LogLevel::kWarning : core::LogLevel::kInfo,
            summary.expired ? message + " (EXPIRED)" : message,
            {{"subject", summary.subject},
             {"not_after", summary.not_after},
             {"chain", absl::StrCat(summary.chain_length)},
             {"mutual_tls", mutual ? "true" : "false"},
             {"client_cas", absl::StrCat(summary.client_cas)}});
}

// Takes server reflection off one server. Linking gRPC's reflection library registers its
// plugin for every server the process builds (a static initializer, whether or not
// InitProtoReflectionServerBuilderPlugin is called), the health-only one included.
class NoReflectionOption final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    const std::string reflection = grpc::reflection::ProtoServerReflectionPlugin().name();
    std::erase_if(*plugins, [&](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
      return plugin->name() == reflection;
    });
  }
};

// Listens on `listener_options` and builds the server on `builder` fed by that listener.
// `what` names the server in errors.
absl::StatusOr<std::unique_ptr<grpc::Server>> BuildWithListener(
    grpc::ServerBuilder& builder, const GrpcListenerOptions& listener_options,
    std::shared_ptr<grpc::ServerCredentials> credentials, std::unique_ptr<GrpcListener>* listener) {
  absl::StatusOr<std::unique_ptr<GrpcListener>> listening = GrpcListener::Listen(listener_options);
  if (!listening.ok()) {
    return absl::Status(listening.status().code(),
                        absl::StrCat("cannot serve ", listener_options.name, " on ",
                                     HostPort(listener_options.address, listener_options.port),
                                     ": ", listening.status().message()));
  }
  auto acceptor = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
      std::move(credentials));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot start the ", listener_options.name, " server"));
  }
  (*listening)->Start(std::move(acceptor));
  *listener = *std::move(listening);
  return server;
}

// A server with no services of its own: the default health service only, plaintext. `unknown`
// answers every other method with UNIMPLEMENTED, as gRPC would; it is there because gRPC 1.51
// refuses to build a server with no callback or synchronous method of its own (the default
// health service is added later), and reflection, which used to be that method, is taken off.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartHealthServer(
    const std::string& address, int port, const grpc::ResourceQuota& quota,
    grpc::CallbackGenericService* unknown, std::unique_ptr<GrpcListener>* listener) {
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<NoReflectionOption>());
  builder.RegisterCallbackGenericService(unknown);
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(kHealthMaxMessageBytes);
  auto server = BuildWithListener(builder,
                                  {.address = address,
                                   .port = port,
                                   .max_connections = kHealthMaxConnections,
                                   .name = "grpc health"},
                                  grpc::InsecureServerCredentials(), listener);
  if (!server.ok()) return server.status();
  (*server)->GetHealthCheckService()->SetServingStatus(true);
  core::Log(core::LogLevel::kInfo, "grpc health listening",
            {{"address", HostPort(address, (*listener)->port())}});
  return server;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcFrontend>> GrpcFrontend::Start(const GrpcOptions& options,
                                                                  const core::Executor* executor) {
  if (absl::Status status = Validate(options); !status.ok()) return status;
  // gRPC's locks are absl::Mutex, and Debian builds abseil without NDEBUG, so every Lock() also
  // feeds abseil's debug-only lock-order deadlock detector (a process-wide graph behind a global
  // lock): about 8 % of the instructions of a BatchExecute at 64 commands per batch (callgrind).
  // CrabCache takes no absl::Mutex itself (core/mutex.h); only gRPC's internals were watched.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Both are process-wide switches read when a ServerBuilder is created; the health-only server
  // takes reflection off again (NoReflectionOption).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::unique_ptr<TlsMaterial> tls;
  if (options.tls.enabled()) {
    absl::StatusOr<std::unique_ptr<TlsMaterial>> material = TlsMaterial::Create(options.tls);
    if (!material.ok()) return material.status();
    tls = *std::move(material);
    LogCertificate(tls->initial_summary(), "grpc tls certificate", !options.tls.client_ca.empty());
  }
  auto service = std::make_unique<CacheService>(
      executor, CacheServiceOptions{.max_batch_commands = options.max_batch_commands,
                                    .tokens = options.tokens,
                                    .auth_limit = options.auth_limit});
  // One quota for both ports: what gRPC's transports may hold for buffers, and the threads of
  // its synchronous handlers (server reflection; the cache and health services use callbacks).
  auto quota = std::make_unique<grpc::ResourceQuota>("crabcache-grpc");
  if (options.memory_limit_bytes > 0) quota->Resize(options.memory_limit_bytes);
  quota->SetMaxThreads(kMaxSyncThreads);

  grpc::ServerBuilder builder;
  builder.RegisterService(service.get());
  builder.SetResourceQuota(*quota);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  std::unique_ptr<GrpcListener> listener;
  auto server = BuildWithListener(builder,
                                  {.address = options.address,
                                   .port = options.port,
                                   .max_connections = options.max_connections,
                                   .name = "grpc"},
                                  Credentials(tls.get()), &listener);
  if (!server.ok()) return server.status();
  (*server)->GetHealthCheckService()->SetServingStatus(true);
  core::Log(
      core::LogLevel::kInfo, "grpc listening",
      {{"address", HostPort(options.address, listener->port())},
       {"tls", !options.tls.enabled()          ? "off"
               : options.tls.client_ca.empty() ? "tls"
                                               : "mutual"},
       {"auth", options.tokens != nullptr ? "token" : "off"},
       {"max_connections", absl::StrCat(options.max_connections)},
       {"memory_limit", options.memory_limit_bytes > 0 ? absl::StrCat(options.memory_limit_bytes)
                                                       : std::string("none")}});

  std::unique_ptr<grpc::Server> health_server;
  std::unique_ptr<GrpcListener> health_listener;
  std::unique_ptr<grpc::CallbackGenericService> health_unknown;
  if (options.health_port != 0) {
    health_unknown = std::make_unique<grpc::CallbackGenericService>();
    auto started = StartHealthServer(options.address, std::max(options.health_port, 0), *quota,
                                     health_unknown.get(), &health_listener);
    if (!started.ok()) {
      listener->StopAccepting();
      (*server)->Shutdown(absl::ToChronoTime(absl::Now()));
      (*server)->Wait();
      return started.status();
    }
    health_server = *std::move(started);
  }

  std::unique_ptr<GrpcFrontend> frontend(
      new GrpcFrontend(std::move(service), std::move(tls), std::move(quota), std::move(listener),
                       std::move(health_unknown), std::move(health_listener)));
  core::MutexLock lock(&frontend->mu_);
  frontend->server_ = *std::move(server);
  frontend->health_server_ = std::move(health_server);
  return frontend;
}

GrpcFrontend::GrpcFrontend(std::unique_ptr<CacheService> service, std::unique_ptr<TlsMaterial> tls,
                           std::unique_ptr<grpc::ResourceQuota> quota,
                           std::unique_ptr<GrpcListener> listener,
                           std::unique_ptr<grpc::CallbackGenericService> health_unknown,
                           std::unique_ptr<GrpcListener> health_listener)
    : service_(std::move(service)),
      tls_(std::move(tls)),
      quota_(std::move(quota)),
      listener_(std::move(listener)),
      health_unknown_(std::move(health_unknown)),
      health_listener_(std::move(health_listener)),
      port_(listener_->port()),
      health_port_(health_listener_ != nullptr ? health_listener_->port() : 0) {}

absl::StatusOr<TlsSummary> GrpcFrontend::ReloadTls(bool* changed) {
  if (tls_ == nullptr) return absl::FailedPreconditionError("TLS is off");
  return tls_->Reload(changed);
}

GrpcFrontend::~GrpcFrontend() { Shutdown(absl::InfinitePast()); }

void GrpcFrontend::SetNotServing() {
  core::MutexLock lock(&mu_);
  if (shut_down_) return;
  server_->GetHealthCheckService()->SetServingStatus(false);
  if (health_server_ != nullptr) health_server_->GetHealthCheckService()->SetServingStatus(false);
}

void GrpcFrontend::Shutdown(absl::Time deadline) {
  // Held across the (blocking) shutdown so a concurrent caller returns only once it is over.
  // No gRPC callback takes mu_, so this cannot deadlock with RPCs in flight.
  core::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->Shutdown();  // NOT_SERVING, and stays so.
  if (health_server_ != nullptr) health_server_->GetHealthCheckService()->Shutdown();
  // New connections are refused by the kernel from here on; gRPC's shutdown sends the open ones
  // GOAWAY and closes them once their calls have ended.
  listener_->StopAccepting();
  // Open streams answer what they have read and end with UNAVAILABLE; new ones are refused.
  service_->BeginDrain();
  // gRPC's own shutdown starts only once they have ended. It sends each connection a GOAWAY and
  // closes a connection once its last call has ended; started while a stream still wrote its
  // last responses, it closed the connection right after that stream's trailers while the client
  // was still sending batches, and the client could fail the stream with the transport error
  // ("Broken pipe") before reading the responses and status already on the wire. gRPC's shutdown
  // then waits for unary calls in flight, and cancels what still runs at the deadline (a stream
  // whose client does not read its responses).
  service_->WaitForStreams(deadline);
  if (deadline == absl::InfiniteFuture()) {
    server_->Shutdown();
  } else {
    server_->Shutdown(absl::ToChronoTime(std::max(deadline, absl::Now())));
  }
  server_->Wait();
  if (health_server_ != nullptr) {
    // The health port answered NOT_SERVING throughout the drain; probes have nothing in flight
    // worth waiting for.
    health_listener_->StopAccepting();
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
  }
  core::Log(core::LogLevel::kInfo, "grpc stopped",
            {{"open_streams", absl::StrCat(service_->open_streams())}});
}

}  // namespace crabcache::service
