#pragma once
// A raw-socket HTTP/1.1 client for the tests that must see what a client library would hide:
// pipelined requests, half-sent heads, oversized bodies, who closed the connection and when.
// Header-only, blocking sockets with timeouts; loopback only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sagaflow::testing {

struct RawAnswer {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConn() { close(); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  RawConn(RawConn&& o) noexcept : fd_(o.fd_), buffer_(std::move(o.buffer_)), eof_(o.eof_) {
    o.fd_ = -1;
  }

  bool connected() const noexcept { return fd_ >= 0; }
  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Sends every byte; false once the peer has closed or reset.
  bool send(std::string_view bytes) {
    while (!bytes.empty() && fd_ >= 0) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return fd_ >= 0;
  }

  // Reads until `count` complete answers were parsed, the peer closed, or the timeout.
  std::vector<RawAnswer> read_answers(std::size_t count, std::chrono::milliseconds timeout) {
    std::vector<RawAnswer> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < count) {
      if (parse_one(out)) continue;
      if (eof_ || !fill(deadline)) break;
    }
    if (out.size() < count && eof_) parse_until_eof(out);
    return out;
  }
  RawAnswer read_answer(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto v = read_answers(1, timeout);
    return v.empty() ? RawAnswer{} : v.front();
  }

  // True once the peer closed (EOF or reset) within the timeout; bytes read meanwhile are kept.
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_) {
      if (!fill(deadline)) return eof_;
    }
    return true;
  }

  const std::string& unread() const noexcept { return buffer_; }

 private:
  // One read with the remaining time; false on timeout.
  bool fill(std::chrono::steady_clock::time_point deadline) {
    if (fd_ < 0) {
      eof_ = true;
      return false;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return true;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  bool parse_one(std::vector<RawAnswer>& out) {
    const auto end = buffer_.find("\r\n\r\n");
    if (end == std::string::npos || buffer_.size() < 12) return false;
    RawAnswer a;
    a.status = std::atoi(buffer_.substr(9, 3).c_str());
    std::string_view head(buffer_.data(), end);
    head.remove_prefix(std::min(head.size(), head.find("\r\n") + 2));
    while (!head.empty()) {
      const auto eol = head.find("\r\n");
      const std::string_view line = head.substr(0, eol);
      head = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name(line.substr(0, colon));
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      a.headers[name] = std::string(value);
    }
    const auto cl = a.headers.find("content-length");
    if (cl == a.headers.end()) return false;  // body up to EOF: parse_until_eof
    const std::size_t length = std::stoul(cl->second);
    if (buffer_.size() < end + 4 + length) return false;
    a.body = buffer_.substr(end + 4, length);
    buffer_.erase(0, end + 4 + length);
    out.push_back(std::move(a));
    return true;
  }

  void parse_until_eof(std::vector<RawAnswer>& out) {
    const auto end = buffer_.find("\r\n\r\n");
    if (end == std::string::npos || buffer_.size() < 12) return;
    RawAnswer a;
    a.status = std::atoi(buffer_.substr(9, 3).c_str());
    a.body = buffer_.substr(end + 4);
    buffer_.clear();
    out.push_back(std::move(a));
  }

  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

inline std::string raw_post(std::string_view path, std::string_view body,
                            std::string_view extra_headers = {}) {
  std::string r = "POST " + std::string(path) +
                  " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  r += extra_headers;
  r += "\r\n";
  r += body;
  return r;
}

// Polls GET `path` on 127.0.0.1:port until it answers 200 (a server starting up); false when
// it never does within the timeout.
inline bool wait_until_answers(int port, std::string_view path = "/healthz",
                               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    RawConn probe(port);
    if (probe.send("GET " + std::string(path) +
                   " HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n") &&
        probe.read_answer(std::chrono::seconds(2)).status == 200) {
      return true;
    }
    ::usleep(50 * 1000);
  }
  return false;
}

inline std::string raw_get(std::string_view path, bool close = false) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n" +
         (close ? "Connection: close\r\n" : "") + "\r\n";
}

}  // namespace sagaflow::testing
