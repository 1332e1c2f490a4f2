#include "tests/testlib/metrics_scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

namespace crabcache::testing {

std::string HttpGet(int port, std::string_view path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET " + std::string(path) + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[16384];
      for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
        out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return out;
}

double SampleValue(std::string_view exposition, std::string_view series) {
  const std::string prefix = "\n" + std::string(series) + " ";
  const size_t at = exposition.find(prefix);
  if (at == std::string_view::npos) return -1;
  const size_t start = at + prefix.size();
  const size_t end = exposition.find('\n', start);
  const std::string value(exposition.substr(
      start, end == std::string_view::npos ? std::string_view::npos : end - start));
  char* parsed_end = nullptr;
  const double v = std::strtod(value.c_str(), &parsed_end);
  return parsed_end == value.c_str() ? -1 : v;
}

double ScrapeSample(int port, std::string_view series) {
  return SampleValue(HttpGet(port, "/metrics"), series);
}

}  // namespace crabcache::testing
