// crabcached: the CrabCache server. See docs/operations.md for flags, signals and metrics.
//
// Signals are blocked in every thread and taken synchronously here with sigwait, so no handler
// runs on an arbitrary thread:
//   SIGTERM, SIGINT  graceful stop: health NOT_SERVING, --shutdown_delay of normal service, then
//                    listeners stop and in-flight work drains for up to --shutdown_grace; exit 0.
//                    A second signal during the stop exits at once with status 1.
//   SIGHUP           reload the auth token file and the TLS files now (files that fail their
//                    checks are refused; the previous tokens or certificate stay).
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/log.h"
#include "server/build_info.h"
#include "server/config.h"
#include "server/daemon.h"

namespace crabcache::server {
namespace {

sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Waits for one of HandledSignals() until `deadline`; returns the signal or 0 on timeout.
int WaitForSignal(const sigset_t& set, absl::Time deadline) {
  for (;;) {
    int signo = 0;
    if (deadline == absl::InfiniteFuture()) {
      if (sigwait(&set, &signo) == 0) return signo;
      continue;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return 0;
    const timespec timeout = absl::ToTimespec(left);
    signo = sigtimedwait(&set, nullptr, &timeout);
    if (signo > 0) return signo;
    if (errno != EINTR && errno != EAGAIN) return 0;
  }
}

void LogConfig(const Config& config) {
  std::string fields;
  for (const auto& [name, value] : config.Describe()) {
    absl::StrAppend(&fields, fields.empty() ? "" : " ", name, "=", value);
  }
  core::Log(core::LogLevel::kInfo, "starting",
            {{"version", std::string(kVersion)},
             {"commit", std::string(kGitCommit)},
             {"config", fields}});
  if (config.max_memory_bytes == 0) {
    core::Log(core::LogLevel::kWarning,
              "no memory limit: none was given and none could be detected; the store grows "
              "without bound",
              {});
  } else {
    core::Log(
        core::LogLevel::kInfo, "memory limit",
        {{"bytes", absl::StrCat(config.max_memory_bytes)}, {"source", config.max_memory_source}});
  }
}

int Run(const Config& config) {
  // Block before any thread starts, so every thread inherits the mask.
  const sigset_t signals = HandledSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto daemon = Daemon::Start(config);
  if (!daemon.ok()) {
    core::Log(core::LogLevel::kError, "start-up failed",
              {{"error", std::string(daemon.status().message())}});
    return 1;
  }
  const BoundPorts& ports = (*daemon)->ports();
  if (!config.ready_file.empty()) {
    if (absl::Status s = WriteReadyFile(config.ready_file, ports); !s.ok()) {
      core::Log(core::LogLevel::kError, "start-up failed", {{"error", std::string(s.message())}});
      return 1;
    }
  }
  core::Log(core::LogLevel::kInfo, "ready",
            {{"fastpath_port", absl::StrCat(ports.fastpath)},
             {"grpc_port", absl::StrCat(ports.grpc)},
             {"health_port", absl::StrCat(ports.health)},
             {"metrics_port", absl::StrCat(ports.metrics)}});

  int signo = 0;
  while ((signo = WaitForSignal(signals, absl::InfiniteFuture())) == SIGHUP) {
    core::Log(core::LogLevel::kInfo, "SIGHUP: reloading");
    (*daemon)->Reload();
  }
  core::Log(core::LogLevel::kInfo, "stopping",
            {{"signal", strsignal(signo)},
             {"shutdown_delay", absl::FormatDuration(config.shutdown_delay)},
             {"shutdown_grace", absl::FormatDuration(config.shutdown_grace)}});
  (*daemon)->SetNotServing();

  // Keep serving while load balancers take the instance out of rotation.
  const absl::Time serve_until = absl::Now() + config.shutdown_delay;
  while ((signo = WaitForSignal(signals, serve_until)) == SIGHUP) {
  }
  if (signo != 0) {
    core::Log(core::LogLevel::kWarning, "second signal: exiting at once");
    return 1;
  }

  // Drain in a helper thread so a second signal can still cut the stop short.
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    (*daemon)->Shutdown(absl::Now() + config.shutdown_grace);
    stopped.store(true);
    // Wake the waiting main thread.
    kill(getpid(), SIGHUP);
  });
  while (!stopped.load()) {
    signo = WaitForSignal(signals, absl::InfiniteFuture());
    if (signo != SIGHUP && !stopped.load()) {
      core::Log(core::LogLevel::kWarning, "second signal: exiting at once");
      std::_Exit(1);
    }
  }
  stopper.join();
  daemon->reset();
  core::Log(core::LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace
}  // namespace crabcache::server

int main(int argc, char** argv) {
  using crabcache::server::kVersion;
  absl::FlagsUsageConfig usage;
  usage.version_string = [] { return absl::StrCat("crabcached ", kVersion, "\n"); };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "CrabCache server: an in-memory cache served over gRPC and a binary fast path.\n"
      "Usage: crabcached [--flag=value ...]   (see --help; docs/operations.md)");
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "crabcached: unexpected argument '%s' (flags are --name=value)\n",
                 positional[1]);
    return 2;
  }
  auto config = crabcache::server::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "crabcached: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  crabcache::core::SetLogLevel(config->log_level);
  crabcache::core::SetLogFormat(config->log_format);
  crabcache::server::LogConfig(*config);
  return crabcache::server::Run(*config);
}
