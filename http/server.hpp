#pragma once
// A small HTTP/1.1 server on the libuv loop, for /metrics, /healthz, /readyz and the webhook
// ingress. Requests are parsed by Debian's http-parser; bodies are buffered up to a limit that
// is checked against Content-Length before the body is read (413 otherwise). Handlers answer
// asynchronously (the webhook answers 202 only after the broker confirmed), and a connection
// closed before the answer is simply dropped. Keep-alive is supported.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

struct uv_loop_s;

namespace sagaflow::http {

struct Request {
  std::string method;
  std::string path;                                          // without the query string
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  // The first header of that (lower-case) name, or empty.
  std::string_view header(std::string_view lower_name) const noexcept;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using Respond = std::function<void(Response)>;
// Called once per request; must call respond exactly once (now or later, on the loop).
using Handler = std::function<void(const Request&, Respond)>;

class Server {
 public:
  Server(uv_loop_s* loop, Handler handler, std::size_t max_body_bytes = 1024 * 1024);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status listen(const std::string& host, int port);
  int port() const noexcept;  // the bound port (useful with port 0)
  // Stops accepting and closes every connection. Safe to call twice.
  void stop() noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

std::string_view status_text(int status) noexcept;

}  // namespace sagaflow::http
