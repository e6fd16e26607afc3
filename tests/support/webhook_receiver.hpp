#pragma once
// A webhook receiver for the tests of outgoing deliveries: a real HTTP/1.1 server on
// 127.0.0.1 (a free port), on a thread of its own (blocking-free sockets and poll()), with
// keep-alive. It records every request and answers as the test says at that moment, globally
// or per path prefix (the longest matching prefix wins):
//   respond(status[, retry_after])   an answer (any status; Retry-After when given)
//   slow(ms[, status])               the answer after `ms`
//   hang()                           never an answer; the connection stays open
//   reset()                          the connection is closed with RST (SO_LINGER 0)
// and can refuse connections altogether (refuse_connections(): the listening socket is closed
// and every open connection dropped; accept_connections() listens again on the same port).
// Requests are parsed with Content-Length or chunked bodies; a request is recorded once its
// body is complete.
//
// Error policy: test code; a failure to listen throws std::runtime_error.
// Lifecycle: listens in the constructor; the destructor stops the thread and closes every
// socket. Every method may be called from any thread.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sagaflow::testing {

struct ReceivedRequest {
  std::chrono::steady_clock::time_point at;  // when the request was complete
  std::chrono::system_clock::time_point wall;
  std::string method;
  std::string path;                                          // the request target as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;
  std::size_t connection = 0;  // 1-based number of the connection it came on

  // The first value of a header (lower-case name), "" when absent.
  std::string header(std::string_view lower_name) const;
  bool has_header(std::string_view lower_name) const;
};

struct Behaviour {
  enum class Kind { respond, hang, reset };
  Kind kind = Kind::respond;
  int status = 200;
  std::string retry_after;                                   // sent as Retry-After when not empty
  std::chrono::milliseconds delay{0};                        // answer after this long
  std::size_t body_bytes = 0;                                // a body of this many 'x'
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
};

class WebhookReceiver {
 public:
  WebhookReceiver();  // listens on a free 127.0.0.1 port; answers 200 to everything
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  int port() const { return port_; }
  std::string url(std::string_view path = "/") const;  // "http://127.0.0.1:<port><path>"

  // The behaviour for every path (prefix ""), or for paths starting with `prefix`. Applies to
  // requests completed from now on.
  void set(Behaviour b, std::string prefix = "");
  void respond(int status, std::string retry_after = "", std::string prefix = "");
  void slow(std::chrono::milliseconds delay, int status = 200, std::string prefix = "");
  void hang(std::string prefix = "");
  void reset(std::string prefix = "");
  void clear_rules();  // back to 200 for every path

  // Closes the listening socket and every open connection: connecting is refused.
  void refuse_connections();
  // Listens again on the same port.
  void accept_connections();

  std::vector<ReceivedRequest> requests() const;
  std::size_t count() const;
  std::size_t count(std::string_view path_prefix) const;
  std::size_t connections() const;       // accepted so far
  std::size_t open_connections() const;  // currently open
  // Waits until count() >= n; returns whether it happened within the timeout.
  bool wait_for_count(std::size_t n, std::chrono::milliseconds timeout) const;

 private:
  struct Conn;
  void run();
  void wake();
  void listen_now();  // on any thread before the loop starts, else on the loop thread
  Behaviour behaviour_for(const std::string& path) const;
  void command(int cmd);  // runs `cmd` on the loop thread and waits for it

  int port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd
  std::thread thread_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stop_ = false;
  int pending_cmd_ = 0;                     // 1 refuse, 2 accept; 0 when done
  std::map<std::string, Behaviour> rules_;  // by prefix; "" = global
  std::vector<ReceivedRequest> requests_;
  std::size_t connections_ = 0;
  std::size_t open_ = 0;
};

}  // namespace sagaflow::testing
