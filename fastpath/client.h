// A small blocking client for the fast path (protocol v1), for tests, the benchmark and the CLI.
//
// Two ways to use it:
//   - one call per command: Put, Get, Del, Expire, Ttl, Ping, Stats (one round trip each);
//   - an explicit pipeline: Queue* any number of requests, Flush() them with as few writes as the
//     socket allows, then ReadReply() once per request, in request order.
//
//     auto client = Client::Connect({.host = "127.0.0.1", .port = port});
//     for (auto& k : keys) (*client)->QueueGet(k);
//     CRABCACHE_RETURN_IF_ERROR((*client)->Flush());
//     for (size_t i = 0; i < keys.size(); ++i) auto reply = (*client)->ReadReply();
//
// Flush never deadlocks against a server that applies backpressure: while the socket does not
// take more bytes, it reads and buffers the replies that have arrived.
//
// Errors: transport problems come back as absl::Status (kUnavailable: connection failed or
// closed; kDeadlineExceeded: no progress within `timeout`; kDataLoss: bytes that are not a v1
// reply). A server ERROR reply is data in the pipeline API and an absl::Status in the one-call
// API, with the code named at the start of its message ("INVALID_ARGUMENT: ...").
//
// Thread-safety: none; one thread uses a client at a time. Owns its socket.
#ifndef CRABCACHE_FASTPATH_CLIENT_H_
#define CRABCACHE_FASTPATH_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fastpath/buffer.h"
#include "fastpath/codec.h"

namespace crabcache::fastpath {

struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  // Longest wait for the connection, or for any progress of a read or write.
  absl::Duration timeout = absl::Seconds(10);
  // Longest ERROR, VALUE or STATS payload accepted.
  size_t max_reply_bytes = kMaxConfigurableBytes;
};

// A reply that owns its bytes.
struct OwnedReply {
  ReplyType type = ReplyType::kOk;
  std::string bytes;    // kError, kValue, kStats.
  int64_t integer = 0;  // kInt.
};

// "OK", "PONG", "NULL", "ERROR", "VALUE", "STATS", "INT".
std::string_view ReplyTypeName(ReplyType type);

// The absl::Status an ERROR reply stands for: the canonical code its message starts with
// (kUnknown if none), and the whole message.
absl::Status ErrorReplyToStatus(std::string_view message);

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- Pipeline ----
  void QueuePing() { EncodePing(&wbuf_); }
  void QueuePut(std::string_view key, std::string_view value,
                std::optional<uint64_t> ttl_seconds = std::nullopt) {
    EncodePut(&wbuf_, key, value, ttl_seconds);
  }
  void QueueGet(std::string_view key) { EncodeGet(&wbuf_, key); }
  void QueueDel(std::string_view key) { EncodeDel(&wbuf_, key); }
  void QueueExpire(std::string_view key, uint64_t seconds) { EncodeExpire(&wbuf_, key, seconds); }
  void QueueTtl(std::string_view key) { EncodeTtl(&wbuf_, key); }
  void QueueStats() { EncodeStatsRequest(&wbuf_); }
  void QueueAuth(std::string_view token) { EncodeAuth(&wbuf_, token); }
  // Any bytes at all (tests of malformed input).
  void QueueRaw(std::string_view bytes) { wbuf_.Append(bytes); }
  size_t queued_bytes() const { return wbuf_.size(); }

  // Writes every queued byte.
  absl::Status Flush();
  // The next reply. The view form's bytes stay valid until the next call on this client.
  absl::StatusOr<Reply> ReadReplyView();
  absl::StatusOr<OwnedReply> ReadReply();

  // ---- One call, one round trip (REQUIRES: nothing queued or unread) ----
  absl::Status Ping();
  absl::Status Put(std::string_view key, std::string_view value,
                   std::optional<uint64_t> ttl_seconds = std::nullopt);
  // nullopt on a miss.
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key);
  // True if the key existed.
  absl::StatusOr<bool> Del(std::string_view key);
  absl::StatusOr<bool> Expire(std::string_view key, uint64_t seconds);
  // Milliseconds left; -1 no expiry; -2 missing.
  absl::StatusOr<int64_t> Ttl(std::string_view key);
  absl::StatusOr<std::string> Stats();
  absl::Status Auth(std::string_view token);

  // Reads until the server closes the connection; fails if a reply arrives first. For tests.
  absl::Status WaitForClose();
  int fd() const { return fd_; }

 private:
  Client(int fd, const ClientOptions& options);
  // Waits for `events` (POLLIN/POLLOUT); kDeadlineExceeded after the timeout.
  absl::StatusOr<short> Wait(short events);
  // One read into rbuf_ of up to `want` bytes; sets eof_ at end of stream.
  absl::Status ReadSome(size_t want);
  absl::StatusOr<Reply> RoundTrip();

  const int fd_;
  const ClientOptions options_;
  Buffer wbuf_;
  Buffer rbuf_;
  size_t consume_next_ = 0;  // Bytes of the reply handed out by ReadReplyView.
  bool eof_ = false;
};

}  // namespace crabcache::fastpath

#endif  // CRABCACHE_FASTPATH_CLIENT_H_
