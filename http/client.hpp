#pragma once
// The HTTP/1.1 client of outgoing webhook deliveries (CONTRACT.md section 9), on the process's
// libuv loop: libcurl's multi interface driven by curl_multi_socket_action, one uv_poll per
// socket and one uv_timer for curl's timeout. The caller decides what an answer means (2xx
// succeeds, 410 disables, Retry-After delays); this layer only makes one attempt per post():
//   - POST of the body as is, with the caller's headers (no "Expect: 100-continue"; curl's
//     default form Content-Type is dropped when the caller gives none), HTTP/1.1, keep-alive;
//   - TLS verification on; redirects are not followed (a 3xx is the answer); no proxy, whatever
//     the environment says; only http and https;
//   - allow_address sees the address actually connected to (after DNS, every address tried) and
//     can refuse it before a connection is made;
//   - one pool per endpoint: at most max_per_pool attempts of a pool run at once (the rest wait
//     FIFO in that pool), at most max_total over all pools (waiting pools are then served
//     round-robin), so one slow endpoint never delays the others;
//   - a response body is never kept: past max_response_bytes the transfer is cut short (the
//     connection is closed) and the status that came is still the answer.
// Error policy: nothing throws; every attempt ends in exactly one ClientResponse.
// Lifecycle: every call on the loop's thread; stop() aborts what runs or waits and reports when
// the last handle is closed; destroy the Client only after that.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.hpp"

struct uv_loop_s;
struct sockaddr;

namespace sagaflow::http {

struct ClientOptions {
  std::size_t max_per_pool = 16;  // concurrent attempts per pool; beyond: queued FIFO in the pool
  std::size_t max_total = 1024;   // concurrent attempts over all pools; beyond: round-robin
  std::size_t max_response_bytes = 64 * 1024;  // body bytes read before the transfer is cut short
  // The address libcurl is about to connect to; false refuses it: no connection is made and
  // the attempt fails with refused_address set. Empty: every address is allowed.
  std::function<bool(const sockaddr*)> allow_address;
  std::string user_agent = "sagaflow-webhooks/1";
};

struct ClientRequest {
  std::string pool;  // e.g. the endpoint id
  std::string url;   // http:// or https://
  std::string body;  // POSTed as is
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Type etc. from the caller
  Millis timeout_ms = 15000;  // the whole attempt (connect + send + answer); queue time excluded
};

struct ClientResponse {
  long status = 0;            // the HTTP status; 0 when no (complete) answer came
  std::string error;          // empty when an answer came; else one line ("stopped",
                              // "address refused: 10.0.0.1", or curl's error text)
  bool timed_out = false;     // timeout_ms passed
  bool refused_address = false;  // allow_address said no
  std::string retry_after;    // the answer's Retry-After value, if any
  Millis elapsed_ms = 0;      // from the start of the transfer (queue time excluded)
};

class Client final {
 public:
  using Done = std::function<void(ClientResponse)>;

  Client(uv_loop_s* loop, ClientOptions options);
  // Call only after stop()'s `closed` ran. (Otherwise stop() is started here and the state is
  // freed when its handles are closed, without a callback.)
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts the attempt now or queues it (see the caps above). `done` runs exactly once, on the
  // loop, never inside post(); it may post() again. After stop(): done runs with "stopped"
  // (post() must not be called once `closed` ran).
  void post(ClientRequest request, Done done);

  std::size_t in_flight() const noexcept;  // running transfers, all pools
  std::size_t queued() const noexcept;     // waiting for a slot, all pools
  std::size_t in_flight(std::string_view pool) const noexcept;

  // Aborts running and queued attempts (their done runs with error "stopped"), closes every
  // connection and handle, then calls `closed` once, on the loop. A second call is ignored.
  void stop(std::function<void()> closed);

  struct Impl;

 private:
  Impl* impl_;  // freed by the destructor, or by the last close callback when orphaned
};

}  // namespace sagaflow::http
