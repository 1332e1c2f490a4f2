#include "fastpath/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/string_view.h"

namespace crabcache::fastpath {
namespace {

constexpr size_t kReadChunk = 64 << 10;

int TimeoutMs(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return -1;
  return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 0, INT32_MAX));
}

absl::Status Errno(std::string_view what) {
  return absl::UnavailableError(absl::StrCat(core::ToAbsl(what), ": ", strerror(errno)));
}

absl::Status Unexpected(const Reply& reply, std::string_view wanted) {
  if (reply.type == ReplyType::kError) return ErrorReplyToStatus(reply.bytes);
  return absl::InternalError(absl::StrCat("expected ", core::ToAbsl(wanted), ", got a ",
                                          core::ToAbsl(ReplyTypeName(reply.type)), " reply"));
}

}  // namespace

std::string_view ReplyTypeName(ReplyType type) {
  switch (type) {
    case ReplyType::kOk:
      return "OK";
    case ReplyType::kPong:
      return "PONG";
    case ReplyType::kNull:
      return "NULL";
    case ReplyType::kError:
      return "ERROR";
    case ReplyType::kValue:
      return "VALUE";
    case ReplyType::kStats:
      return "STATS";
    case ReplyType::kInt:
      return "INT";
  }
  return "UNKNOWN";
}

absl::Status ErrorReplyToStatus(std::string_view message) {
  for (int code = 1; code <= 16; ++code) {
    const auto c = static_cast<absl::StatusCode>(code);
    const std::string name = absl::StatusCodeToString(c);
    if (message.size() > name.size() + 1 && message.substr(0, name.size()) == name &&
        message.substr(name.size(), 2) == ": ") {
      return absl::Status(c, core::ToAbsl(message));
    }
  }
  return absl::UnknownError(core::ToAbsl(message));
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(options.port);
  if (const int rc = getaddrinfo(options.host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve '", options.host, "': ", gai_strerror(rc)));
  }
  absl::Status last = absl::UnavailableError("no address");
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = Errno("socket");
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = Errno(absl::StrCat("connect to ", options.host, ":", options.port));
      close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    const int ready = poll(&p, 1, TimeoutMs(options.timeout));
    int error = 0;
    socklen_t len = sizeof(error);
    if (ready == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (ready != 1 || error != 0) {
      last =
          ready == 0
              ? absl::DeadlineExceededError(
                    absl::StrCat("connect to ", options.host, ":", options.port, " timed out"))
              : absl::UnavailableError(absl::StrCat("connect to ", options.host, ":", options.port,
                                                    ": ", strerror(error ? error : errno)));
      close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    freeaddrinfo(found);
    return std::unique_ptr<Client>(new Client(fd, options));
  }
  freeaddrinfo(found);
  return last;
}

Client::Client(int fd, const ClientOptions& options) : fd_(fd), options_(options) {}

Client::~Client() { close(fd_); }

absl::StatusOr<short> Client::Wait(short events) {
  pollfd p{fd_, events, 0};
  for (;;) {
    const int n = poll(&p, 1, TimeoutMs(options_.timeout));
    if (n > 0) return p.revents;
    if (n == 0) return absl::DeadlineExceededError("fast path server did not respond in time");
    if (errno != EINTR) return Errno("poll");
  }
}

absl::Status Client::ReadSome(size_t want) {
  char* dst = rbuf_.Reserve(want);
  for (;;) {
    const ssize_t n = read(fd_, dst, want);
    if (n > 0) {
      rbuf_.Commit(static_cast<size_t>(n));
      return absl::OkStatus();
    }
    if (n == 0) {
      eof_ = true;
      return absl::OkStatus();
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
    return Errno("read");
  }
}

absl::Status Client::Flush() {
  while (!wbuf_.empty()) {
    absl::StatusOr<short> ready = Wait(eof_ ? POLLOUT : POLLIN | POLLOUT);
    if (!ready.ok()) return ready.status();
    if ((*ready & POLLIN) && !eof_) {
      // Take replies off the socket so a server that stopped reading us can write again.
      if (absl::Status s = ReadSome(kReadChunk); !s.ok()) return s;
    }
    if (*ready & (POLLOUT | POLLERR | POLLHUP)) {
      const ssize_t n = send(fd_, wbuf_.data(), wbuf_.size(), MSG_NOSIGNAL);
      if (n > 0) {
        wbuf_.Consume(static_cast<size_t>(n));
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        absl::Status s = Errno("write");
        wbuf_.Clear();
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Reply> Client::ReadReplyView() {
  rbuf_.Consume(consume_next_);
  consume_next_ = 0;
  for (;;) {
    const ReplyParseResult r = ParseReply(rbuf_.view(), options_.max_reply_bytes);
    if (r.status == ReplyParseResult::Status::kReply) {
      consume_next_ = r.consumed;
      return r.reply;
    }
    if (r.status == ReplyParseResult::Status::kError) {
      return absl::DataLossError(
          absl::StrCat("bad reply from the server: ", core::ToAbsl(r.error)));
    }
    if (eof_) return absl::UnavailableError("connection closed by the server");
    absl::StatusOr<short> ready = Wait(POLLIN);
    if (!ready.ok()) return ready.status();
    const size_t missing = r.needed > rbuf_.size() ? r.needed - rbuf_.size() : 0;
    if (absl::Status s = ReadSome(std::max(kReadChunk, missing)); !s.ok()) return s;
  }
}

absl::StatusOr<OwnedReply> Client::ReadReply() {
  absl::StatusOr<Reply> r = ReadReplyView();
  if (!r.ok()) return r.status();
  return OwnedReply{r->type, std::string(r->bytes), r->integer};
}

absl::StatusOr<Reply> Client::RoundTrip() {
  if (absl::Status s = Flush(); !s.ok()) return s;
  return ReadReplyView();
}

absl::Status Client::Ping() {
  QueuePing();
  absl::StatusOr<Reply> r = RoundTrip();
  if (!r.ok()) return r.status();
  return r->type == ReplyType::kPong ? absl::OkStatus() : Unexpected(*r, "PONG");
}

absl::Status Client::Put(std::string_view key, std::string_view value,
                         std::optional<uint64_t> ttl_seconds) {
  QueuePut(key, value, ttl_seconds);
  absl::StatusOr<Reply> r = RoundTrip();
  if (!r.ok()) return r.status();
  return r->type == ReplyType::kOk ? absl::OkStatus() : Unexpected(*r, "OK");
}

absl::StatusOr<std::optional<std::string>> Client::Get(std::string_view key) {
  QueueGet(key);
  absl::StatusOr<Reply> r = RoundTrip();
  if (!r.ok()) return r.status();
  if (r->type == ReplyType::kValue) return std::optional<std::string>(std::string(r->bytes));
  if (r->type == ReplyType::kNull) return std::optional<std::string>();
  return Unexpected(*r, "VALUE or NULL");
}

absl::StatusOr<bool> Client::Del(std::string_view key) {
  QueueDel(key);
  absl::StatusOr<Reply> r = RoundTrip();
  if (!r.ok()) return r.status();
  if (r->type == ReplyType::kOk || r->type == ReplyType::kNull) return r->type == ReplyType::kOk;
  return Unexpected(*r, "OK or NULL");
}

absl::StatusOr<bool> Client::Expire(std::string_view key, uint64_t seconds) {
  QueueExpire(key, seconds);
  absl::StatusOr<Reply> r = RoundTrip();
  if (!r.ok()) return r.status();
  if (r->type == ReplyType::kOk || r->type == ReplyType::kNull) return r->type == ReplyType::kOk;
  return Unexpected(*r, "OK or NULL");
}

absl::StatusOr<int64_t> Client::Ttl(std::string_view key) {
  QueueTtl(key);
  absl::StatusOr<Reply> r = RoundTrip();
  if (!r.ok()) return r.status();
  if (r->type == ReplyType::kInt) return r->integer;
  return Unexpected(*r, "INT");
}

absl::StatusOr<std::string> Client::Stats() {
  QueueStats();
  absl::StatusOr<Reply> r = RoundTrip();
  if (!r.ok()) return r.status();
  if (r->type == ReplyType::kStats) return std::string(r->bytes);
  return Unexpected(*r, "STATS");
}

absl::Status Client::Auth(std::string_view token) {
  QueueAuth(token);
  absl::StatusOr<Reply> r = RoundTrip();
  if (!r.ok()) return r.status();
  return r->type == ReplyType::kOk ? absl::OkStatus() : Unexpected(*r, "OK");
}

absl::Status Client::WaitForClose() {
  rbuf_.Consume(consume_next_);
  consume_next_ = 0;
  while (!eof_) {
    if (!rbuf_.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(rbuf_.size(), " unexpected bytes before the connection closed"));
    }
    absl::StatusOr<short> ready = Wait(POLLIN);
    if (!ready.ok()) return ready.status();
    if (absl::Status s = ReadSome(kReadChunk); !s.ok()) {
      // A reset also means the server closed the connection.
      return absl::IsUnavailable(s) ? absl::OkStatus() : s;
    }
  }
  return rbuf_.empty() ? absl::OkStatus()
                       : absl::FailedPreconditionError("unexpected bytes before the close");
}

}  // namespace crabcache::fastpath
