// crabcache-cli: one fast path command from the shell.
//
//   crabcache-cli [--host H] [--port P] [--timeout SECONDS] [--raw|--escaped] COMMAND ARGS...
//     get KEY                 prints the value                  exit 1 if missing
//     put KEY VALUE [--ttl S] prints OK
//     del KEY                 prints OK                         exit 1 if missing
//     expire KEY SECONDS      prints OK                         exit 1 if missing
//     ttl KEY                 prints "<ms> ms" or "no expiry"   exit 1 if missing
//     ping                    prints PONG
//     stats                   prints the JSON
//
// Exit codes: 0 success, 1 miss / not found, 2 error (usage, connection, server ERROR).
// Values print quoted with C escapes on a terminal, as raw bytes otherwise; --raw and --escaped
// force one or the other.
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/string_view.h"
#include "fastpath/client.h"

namespace crabcache::fastpath {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitMissing = 1;
constexpr int kExitError = 2;

constexpr char kUsage[] =
    "usage: crabcache-cli [--host H] [--port P] [--timeout SECONDS] [--raw|--escaped] COMMAND "
    "ARGS...\n"
    "  get KEY | put KEY VALUE [--ttl SECONDS] | del KEY | expire KEY SECONDS | ttl KEY |\n"
    "  ping | stats\n"
    "exit codes: 0 ok, 1 miss or not found, 2 error\n";

struct Args {
  ClientOptions client;
  bool raw = !isatty(STDOUT_FILENO);
  std::optional<uint64_t> ttl;
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
      if (!ParseUint(*value, &number)) return "--timeout must be whole seconds";
      args->client.timeout = absl::Seconds(static_cast<int64_t>(number));
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

int Run(int argc, char** argv) {
  Args args;
  if (std::optional<std::string> problem = ParseArgs(argc, argv, &args); problem.has_value()) {
    return Usage(*problem);
  }
  const std::vector<std::string>& p = args.positional;
  if (p.empty()) return Usage("no command");
  const std::string& cmd = p[0];
  auto need = [&](size_t n) { return p.size() == n + 1; };
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
}  // namespace crabcache::fastpath

int main(int argc, char** argv) { return crabcache::fastpath::Run(argc, argv); }
