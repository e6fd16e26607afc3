#pragma once
// The HTTP/1.1 listener of the metrics endpoint and the webhook ingress, on the process's libuv
// loop. The protocol is Debian's libmicrohttpd (parsing, keep-alive, pipelining in request
// order, chunked bodies, connection limit, idle timeout, suspend/resume); this layer adds the
// contract's limits on top (CONTRACT.md section 7):
//   - a body over max_body_bytes is answered 413 before any byte of it is read (from
//     Content-Length), or as soon as a chunked body passes the limit; the connection then
//     closes, so nothing after the head is ever parsed as a request;
//   - a handler that has not answered within handler_timeout_ms is answered 504 (the request
//     may still take effect: a webhook sender retries, and the event id deduplicates);
//   - a request head over max_head_bytes is answered 431;
//   - a connection whose request head is not complete within header_timeout_ms of its start
//     (or of its previous answer, on keep-alive) is closed;
//   - beyond max_connections, new connections wait in the listen backlog until one closes.
// Handlers answer asynchronously (the webhook answers 202 only after the broker confirmed): the
// connection is suspended meanwhile, and an answer for a connection that is gone is dropped.
#include <cstddef>
#include <cstdint>
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
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::string body;

  // The first header of that (lower-case) name, or empty.
  std::string_view header(std::string_view lower_name) const noexcept;
  // The first query argument of that name, or nullptr when absent.
  const std::string* query_param(std::string_view name) const noexcept;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers = {};  // extra (Set-Cookie, ...)
};

using Respond = std::function<void(Response)>;
// Called once per request; must call respond exactly once (now or later, on the loop).
using Handler = std::function<void(const Request&, Respond)>;

struct Limits {
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_head_bytes = 16 * 1024;   // request line + headers
  std::int64_t header_timeout_ms = 10000;   // SAGAFLOW_HTTP_HEADER_TIMEOUT_MS
  unsigned max_connections = 1024;          // SAGAFLOW_HTTP_MAX_CONNECTIONS
  std::int64_t handler_timeout_ms = 30000;  // a handler not answering by then: 504
};

class Server {
 public:
  Server(uv_loop_s* loop, Handler handler, Limits limits = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status listen(const std::string& host, int port);
  int port() const noexcept;  // the bound port (useful with port 0)
  // Closes the listening socket; requests that arrive from now on on open connections are
  // answered 503 (and the connection closed), requests already with their handler still get
  // its answer. Call stop() once those are done.
  void drain() noexcept;
  // Stops accepting, answers requests still waiting for their handler with 503, and closes
  // every connection. Safe to call twice.
  void stop() noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

std::string_view status_text(int status) noexcept;

}  // namespace sagaflow::http
