// crabcache-cli: one command from the shell, over the fast path (or gRPC health).
//
//   crabcache-cli [--host H] [--port P] [--timeout T] [--auth_token_file F] [--raw|--escaped]
//                 COMMAND ARGS...
//     get KEY                 prints the value                  exit 1 if missing
//     put KEY VALUE [--ttl S] prints OK
//     del KEY                 prints OK                         exit 1 if missing
//     expire KEY SECONDS      prints OK                         exit 1 if missing
//     ttl KEY                 prints "<ms> ms" or "no expiry"   exit 1 if missing
//     ping                    prints PONG
//     stats                   prints the JSON
//   crabcache-cli health [--target HOST:PORT] [--service NAME] [--timeout T]
//                           grpc.health.v1 Check (default target 127.0.0.1:50051, service "");
//                           prints the status; exit 0 only when SERVING (the Helm test uses it)
//
// --auth_token_file: for a server with auth on, the first token of F (the server's token file
// format) is sent as AUTH before the command; tokens never go on the command line, where `ps`
// would show them.
// T is whole seconds ("5") or a duration ("5s", "500ms"). Exit codes: 0 success, 1 miss / not
// found / not serving, 2 error (usage, connection, server ERROR).
// Values print quoted with C escapes on a terminal, as raw bytes otherwise; --raw and --escaped
// force one or the other.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/mutex.h"
#include "core/string_view.h"
#include "fastpath/client.h"
#include "fastpath/token_store.h"

namespace crabcache::cli {
namespace {

using fastpath::Client;
using fastpath::ClientOptions;

constexpr int kExitOk = 0;
constexpr int kExitMissing = 1;
constexpr int kExitError = 2;

constexpr char kUsage[] =
    "usage: crabcache-cli [--host H] [--port P] [--timeout SECONDS] [--auth_token_file F]\n"
    "                     [--raw|--escaped] COMMAND ARGS...\n"
    "  get KEY | put KEY VALUE [--ttl SECONDS] | del KEY | expire KEY SECONDS | ttl KEY |\n"
    "  ping | stats\n"
    "       crabcache-cli health [--target HOST:PORT] [--service NAME] [--timeout T]\n"
    "exit codes: 0 ok, 1 miss, not found or not serving, 2 error\n";

struct Args {
  ClientOptions client;
  bool raw = !isatty(STDOUT_FILENO);
  std::optional<uint64_t> ttl;
  std::string target = "127.0.0.1:50051";  // health only.
  std::string service;                     // health only.
  std::string token_file;
  std::vector<std::string> positional;
};

bool ParseUint(std::string_view s, uint64_t* out) {
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out);
  return !s.empty() && ec == std::errc() && ptr == end;
}

int Usage(std::string_view problem) {
  if (!problem.empty())
    std::fprintf(stderr, "crabcache-cli: %.*s\n", static_cast<int>(problem.size()), problem.data());
  std::fputs(kUsage, stderr);
  return kExitError;
}

// Accepts --name=value and --name value anywhere; "--" ends the options.
std::optional<std::string> ParseArgs(int argc, char** argv, Args* args) {
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (options_done || a.size() < 3 || a.substr(0, 2) != "--") {
      args->positional.emplace_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    std::string_view name = a.substr(2);
    std::optional<std::string_view> value;
    if (const size_t eq = name.find('='); eq != std::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "raw" || name == "escaped") {
      args->raw = name == "raw";
      continue;
    }
    if (name == "help") return std::string();
    if (!value.has_value()) {
      if (i + 1 >= argc) return absl::StrCat("--", core::ToAbsl(name), " needs a value");
      value = argv[++i];
    }
    uint64_t number = 0;
    if (name == "host") {
      args->client.host = std::string(*value);
    } else if (name == "port") {
      if (!ParseUint(*value, &number) || number > 65535) return "--port must be 0..65535";
      args->client.port = static_cast<int>(number);
    } else if (name == "timeout") {
      if (ParseUint(*value, &number)) {
        args->client.timeout = absl::Seconds(static_cast<int64_t>(number));
      } else if (!absl::ParseDuration(core::ToAbsl(*value), &args->client.timeout) ||
                 args->client.timeout <= absl::ZeroDuration()) {
        return "--timeout must be seconds (5) or a duration (5s, 500ms)";
      }
    } else if (name == "target") {
      args->target = std::string(*value);
    } else if (name == "auth_token_file") {
      args->token_file = std::string(*value);
    } else if (name == "service") {
      args->service = std::string(*value);
    } else if (name == "ttl") {
      if (!ParseUint(*value, &number)) return "--ttl must be whole seconds";
      args->ttl = number;
    } else {
      return absl::StrCat("unknown option --", core::ToAbsl(name));
    }
  }
  return std::nullopt;
}

void PrintBytes(std::string_view bytes, bool raw) {
  if (raw) {
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    std::fputc('\n', stdout);
    return;
  }
  const std::string escaped = absl::CEscape(core::ToAbsl(bytes));
  std::printf("\"%s\"\n", escaped.c_str());
}

int Fail(const absl::Status& status) {
  const std::string text = status.ToString();
  std::fprintf(stderr, "crabcache-cli: %s\n", text.c_str());
  return kExitError;
}

// grpc.health.v1.Health/Check, spoken as raw protobuf bytes (Debian ships no generated health
// stubs): HealthCheckRequest{service = 1}; HealthCheckResponse{status = 1}.
int Health(const Args& args) {
  std::string request;
  if (!args.service.empty()) {
    if (args.service.size() > 127) return Usage("--service is too long");
    request.push_back('\x0a');
    request.push_back(static_cast<char>(args.service.size()));
    request.append(args.service);
  }
  auto channel = grpc::CreateChannel(args.target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + args.client.timeout));
  grpc::Slice slice(request);
  const grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  core::Mutex mu;
  std::condition_variable_any done;
  std::optional<grpc::Status> status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request_buffer,
                 &response_buffer, [&](grpc::Status s) {
                   core::MutexLock lock(&mu);
                   status = std::move(s);
                   done.notify_all();
                 });
  {
    core::MutexLock lock(&mu);
    while (!status.has_value()) done.wait(mu);
  }
  if (!status->ok()) {
    std::fprintf(stderr, "crabcache-cli: health check of %s failed: %s: %s\n", args.target.c_str(),
                 std::to_string(status->error_code()).c_str(), status->error_message().c_str());
    return kExitError;
  }
  std::vector<grpc::Slice> slices;
  std::string response;
  if (response_buffer.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) response.append(s.begin(), s.end());
  }
  // status is field 1, a varint enum: 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN.
  int code = 0;
  if (response.size() == 2 && response[0] == '\x08') code = response[1];
  static constexpr const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  std::puts(code >= 0 && code <= 3 ? kNames[code] : "UNKNOWN");
  return code == 1 ? kExitOk : kExitMissing;
}

int Run(int argc, char** argv) {
  Args args;
  if (std::optional<std::string> problem = ParseArgs(argc, argv, &args); problem.has_value()) {
    return Usage(*problem);
  }
  const std::vector<std::string>& p = args.positional;
  if (p.empty()) return Usage("no command");
  const std::string& cmd = p[0];
  auto need = [&](size_t n) { return p.size() == n + 1; };
  if (cmd == "health" && need(0)) return Health(args);
  if (!((cmd == "get" && need(1)) || (cmd == "put" && need(2)) || (cmd == "del" && need(1)) ||
        (cmd == "expire" && need(2)) || (cmd == "ttl" && need(1)) || (cmd == "ping" && need(0)) ||
        (cmd == "stats" && need(0)))) {
    return Usage(absl::StrCat("bad command or argument count: ", cmd));
  }
  if (args.ttl.has_value() && cmd != "put") return Usage("--ttl goes with put");
  uint64_t seconds = 0;
  if (cmd == "expire" && !ParseUint(p[2], &seconds)) return Usage("SECONDS must be a number");

  absl::StatusOr<std::unique_ptr<Client>> connected = Client::Connect(args.client);
  if (!connected.ok()) return Fail(connected.status());
  Client& client = **connected;
  if (!args.token_file.empty()) {
    std::ifstream in(args.token_file);
    if (!in.is_open()) {
      return Fail(absl::NotFoundError(absl::StrCat("cannot read ", args.token_file)));
    }
    std::stringstream content;
    content << in.rdbuf();
    absl::StatusOr<std::vector<std::string>> tokens = auth::ParseTokenFile(content.str());
    if (!tokens.ok()) return Fail(tokens.status());
    if (absl::Status s = client.Auth(tokens->front()); !s.ok()) return Fail(s);
  }

  if (cmd == "ping") {
    if (absl::Status s = client.Ping(); !s.ok()) return Fail(s);
    std::puts("PONG");
    return kExitOk;
  }
  if (cmd == "stats") {
    absl::StatusOr<std::string> json = client.Stats();
    if (!json.ok()) return Fail(json.status());
    std::puts(json->c_str());
    return kExitOk;
  }
  if (cmd == "put") {
    if (absl::Status s = client.Put(p[1], p[2], args.ttl); !s.ok()) return Fail(s);
    std::puts("OK");
    return kExitOk;
  }
  if (cmd == "get") {
    absl::StatusOr<std::optional<std::string>> value = client.Get(p[1]);
    if (!value.ok()) return Fail(value.status());
    if (!value->has_value()) {
      std::puts("(nil)");
      return kExitMissing;
    }
    PrintBytes(**value, args.raw);
    return kExitOk;
  }
  if (cmd == "del" || cmd == "expire") {
    absl::StatusOr<bool> found = cmd == "del" ? client.Del(p[1]) : client.Expire(p[1], seconds);
    if (!found.ok()) return Fail(found.status());
    std::puts(*found ? "OK" : "(not found)");
    return *found ? kExitOk : kExitMissing;
  }
  // ttl
  absl::StatusOr<int64_t> ttl = client.Ttl(p[1]);
  if (!ttl.ok()) return Fail(ttl.status());
  if (*ttl == core::kTtlMissing) {
    std::puts("(not found)");
    return kExitMissing;
  }
  if (*ttl == core::kTtlNoExpiry) {
    std::puts("no expiry");
  } else {
    std::printf("%lld ms\n", static_cast<long long>(*ttl));
  }
  return kExitOk;
}

}  // namespace
}  // namespace crabcache::cli

int main(int argc, char** argv) { return crabcache::cli::Run(argc, argv); }
