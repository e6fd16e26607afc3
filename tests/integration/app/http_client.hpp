#pragma once
// A minimal blocking HTTP/1.1 client for the integration tests (one request per connection).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace sagaflow::testing {

struct HttpAnswer {
  int status = 0;  // 0: no answer
  std::string body;
};

// method "GET" or "POST"; declared_length overrides Content-Length and then sends no body.
inline HttpAnswer http_request(int port, const std::string& method, const std::string& path,
                               const std::string& body = {}, const std::string& signature = {},
                               std::size_t declared_length = std::string::npos) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return {};
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
  if (!signature.empty()) req += "X-Sagaflow-Signature: " + signature + "\r\n";
  if (method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " +
           std::to_string(declared_length == std::string::npos ? body.size() : declared_length) +
           "\r\n";
  }
  req += "\r\n";
  if (declared_length == std::string::npos) req += body;
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string answer;
  char buf[8192];
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    answer.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (answer.size() < 12) return {};
  HttpAnswer out;
  out.status = std::stoi(answer.substr(9, 3));
  if (const auto p = answer.find("\r\n\r\n"); p != std::string::npos)
    out.body = answer.substr(p + 4);
  return out;
}

}  // namespace sagaflow::testing
