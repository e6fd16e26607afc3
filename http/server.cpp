// http::Server on libmicrohttpd, driven by the libuv loop: MHD runs in "external polling" mode
// with epoll; its epoll descriptor is watched with a uv_poll, its timeout with a uv_timer, and
// every wake-up calls MHD_run. The library owns HTTP/1.1 (parsing, keep-alive, pipelining,
// chunked bodies, the connection limit, the idle timeout, suspend/resume); this file owns the
// contract's limits on top of it (see server.hpp) and the bridge to asynchronous handlers.
#include "http/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <list>
#include <optional>

#include <fmt/format.h>

#include "core/log.hpp"

namespace sagaflow::http {

std::string_view Request::header(std::string_view lower_name) const noexcept {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

const std::string* Request::query_param(std::string_view name) const noexcept {
  for (const auto& [k, v] : query) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string_view status_text(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

namespace {

// Past this many bytes of a refused chunked body the connection is dropped without waiting.
constexpr std::size_t kMaxDiscardBytes = 16 * 1024 * 1024;

// One per TCP connection (MHD's socket context): the deadline by which its next request head
// must be complete. Kept in a list ordered by deadline, so the sweep only looks at the front.
struct ConnState {
  MHD_Connection* connection = nullptr;
  std::uint64_t head_deadline = 0;  // uv_now() ms; 0 while a request is being handled
  std::list<ConnState*>::iterator self;
};

// One per request (MHD's request context). Shared with the handler's respond callback, which
// may run after the connection is gone: `connection` is then null and the answer is dropped.
struct RequestState {
  Server::Impl* server = nullptr;
  MHD_Connection* connection = nullptr;
  Request request;
  bool dispatched = false;
  bool suspended = false;
  std::uint64_t deadline = 0;  // uv_now() ms by which the handler must have answered
  bool rejected = false;       // answered 413 mid-body: the rest is read and thrown away
  std::size_t discarded = 0;
  std::optional<Response> answer;
  std::list<std::shared_ptr<RequestState>>::iterator waiting;  // valid while suspended
};

Response error_response(int status, std::string_view error, std::string_view detail) {
  return Response{status, "application/json",
                  fmt::format(R"({{"error":"{}","detail":"{}"}})"
                              "\n",
                              error, detail)};
}

}  // namespace

struct Server::Impl {
  uv_loop_t* loop = nullptr;
  Handler handler;
  Limits limits;
  MHD_Daemon* daemon = nullptr;
  int listen_fd = -1;
  int bound_port = 0;
  uv_poll_t poll{};           // MHD's epoll descriptor
  uv_poll_t listen_poll{};    // the listening socket, watched while below the connection cap
  uv_timer_t accept_retry{};  // after EMFILE: watch the listening socket again later
  std::uint64_t next_fd_warning = 0;
  bool listening = false;
  bool draining = false;     // drain(): no new connections, new requests answered 503
  uv_timer_t run_timer{};    // MHD's own timeout, or 0 to run again on the next turn
  uv_timer_t sweep_timer{};  // head deadlines
  int open_handles = 0;
  bool orphaned = false;  // the Server is gone: the last close callback deletes this
  bool stopped = false;
  bool in_run = false;
  std::list<ConnState*> connections;                   // ordered by head_deadline
  std::list<std::shared_ptr<RequestState>> suspended;  // waiting for their handler

  ~Impl() {
    if (daemon != nullptr) MHD_stop_daemon(daemon);
    if (listen_fd >= 0) ::close(listen_fd);
  }

  // Runs MHD once and re-arms the timer from what it says it needs next.
  void run() {
    if (daemon == nullptr || in_run) return;
    in_run = true;
    MHD_run(daemon);
    in_run = false;
    arm_timer();
  }

  void arm_timer() {
    if (daemon == nullptr) return;
    MHD_UNSIGNED_LONG_LONG timeout = 0;
    if (MHD_get_timeout(daemon, &timeout) == MHD_YES) {
      uv_timer_start(
          &run_timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->run(); },
          static_cast<std::uint64_t>(timeout), 0);
    } else {
      uv_timer_stop(&run_timer);
    }
  }

  void schedule_run() {
    if (daemon != nullptr)
      uv_timer_start(
          &run_timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->run(); }, 0, 0);
  }

  void wait_for_head(ConnState* c) {
    c->head_deadline = uv_now(loop) + static_cast<std::uint64_t>(limits.header_timeout_ms);
    connections.splice(connections.end(), connections, c->self);
  }

  // Closes connections whose request head is overdue. MHD notices the shut-down socket on its
  // next run and releases the connection.
  void sweep() {
    const std::uint64_t now = uv_now(loop);
    // Handlers that have not answered in time (a broker that stalls without failing): 503, so
    // that waiting requests never pin the connection cap. Suspended in order, so oldest first.
    while (!suspended.empty() && suspended.front()->deadline <= now) {
      std::shared_ptr<RequestState> r = suspended.front();
      r->answer = error_response(504, "timeout",
                                 "no answer in time; the request may still take effect, so retry "
                                 "(the event id deduplicates)");
      r->suspended = false;
      suspended.pop_front();
      MHD_resume_connection(r->connection);
      schedule_run();
    }
    bool closed = false;
    for (auto it = connections.begin(); it != connections.end();) {
      ConnState* c = *it++;
      if (c->head_deadline == 0) continue;
      if (c->head_deadline > now) break;
      c->head_deadline = 0;
      const MHD_ConnectionInfo* info =
          MHD_get_connection_info(c->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
      if (info != nullptr) {
        ::shutdown(info->connect_fd, SHUT_RDWR);
        closed = true;
      }
    }
    if (closed) schedule_run();
  }

  // The listening socket is ours: connections are accepted while below the cap and handed to
  // MHD; at the cap the socket is not watched, so new connections wait in the kernel's backlog
  // until one closes (MHD's own cap, in external-epoll mode, stops listening for good).
  void watch_listener() {
    if (stopped || draining || daemon == nullptr) return;
    if (connections.size() < limits.max_connections) {
      if (!listening)
        uv_poll_start(&listen_poll, UV_READABLE,
                      [](uv_poll_t* p, int, int) { static_cast<Impl*>(p->data)->accept_some(); });
      listening = true;
    } else if (listening) {
      uv_poll_stop(&listen_poll);
      listening = false;
    }
  }

  void accept_some() {
    bool added = false;
    for (int i = 0; i < 64 && connections.size() < limits.max_connections; ++i) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          // The backlog stays readable: stop watching it for a while instead of spinning.
          const std::uint64_t now = uv_now(loop);
          if (now >= next_fd_warning) {
            log::warn("http: out of file descriptors; new connections wait",
                      {{"port", bound_port}, {"open", connections.size()}});
            next_fd_warning = now + 10000;
          }
          uv_poll_stop(&listen_poll);
          listening = false;
          uv_timer_start(
              &accept_retry, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->watch_listener(); },
              100, 0);
          if (added) run();
          return;
        }
        break;
      }
      // MHD closes the socket itself if it cannot take it.
      added |= MHD_add_connection(daemon, fd, reinterpret_cast<sockaddr*>(&peer), len) == MHD_YES;
    }
    watch_listener();
    if (added) run();
  }

  void close_handle(uv_handle_t* h) {
    ++open_handles;
    uv_close(h, [](uv_handle_t* handle) {
      auto* self = static_cast<Impl*>(handle->data);
      if (--self->open_handles == 0 && self->orphaned) delete self;
    });
  }

  static MHD_Result queue(MHD_Connection* connection, const Response& r, bool close = false) {
    MHD_Response* resp = MHD_create_response_from_buffer(
        r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
    if (resp == nullptr) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    for (const auto& [name, value] : r.headers)
      MHD_add_response_header(resp, name.c_str(), value.c_str());
    if (r.status == 413 || r.status == 431 || close)
      MHD_add_response_header(resp, "Connection", "close");
    const MHD_Result rc = MHD_queue_response(connection, static_cast<unsigned>(r.status), resp);
    MHD_destroy_response(resp);
    return rc;
  }

  // ---- libmicrohttpd callbacks ----

  static void on_connection(void* cls, MHD_Connection* connection, void** socket_context,
                            MHD_ConnectionNotificationCode code) {
    auto* self = static_cast<Impl*>(cls);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      auto* c = new ConnState;
      c->connection = connection;
      self->connections.push_back(c);
      c->self = std::prev(self->connections.end());
      self->wait_for_head(c);
      *socket_context = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
      auto* c = static_cast<ConnState*>(*socket_context);
      if (c == nullptr) return;
      self->connections.erase(c->self);
      delete c;
      *socket_context = nullptr;
      self->watch_listener();  // below the cap again: accept what waits in the backlog
    }
  }

  static void on_completed(void* cls, MHD_Connection* connection, void** req_cls,
                           MHD_RequestTerminationCode) {
    auto* self = static_cast<Impl*>(cls);
    auto* holder = static_cast<std::shared_ptr<RequestState>*>(*req_cls);
    if (holder != nullptr) {
      RequestState& r = **holder;
      r.connection = nullptr;  // a late answer is dropped
      if (r.suspended) {
        r.suspended = false;
        self->suspended.erase(r.waiting);
      }
      delete holder;
      *req_cls = nullptr;
    }
    // On keep-alive, the next request head has its own deadline from now.
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info != nullptr && info->socket_context != nullptr)
      self->wait_for_head(static_cast<ConnState*>(info->socket_context));
  }

  static MHD_Result on_query(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* r = static_cast<RequestState*>(cls);
    if (r->request.query.size() < 64)
      r->request.query.emplace_back(key != nullptr ? key : "", value != nullptr ? value : "");
    return MHD_YES;
  }

  static MHD_Result on_header(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* r = static_cast<RequestState*>(cls);
    std::string name(key);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    r->request.headers.emplace_back(std::move(name), value != nullptr ? value : "");
    return MHD_YES;
  }

  MHD_Result begin_request(MHD_Connection* connection, const char* url, const char* method,
                           void** req_cls) {
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info != nullptr && info->socket_context != nullptr) {
      static_cast<ConnState*>(info->socket_context)->head_deadline = 0;  // the head is complete
    }
    auto state = std::make_shared<RequestState>();
    state->server = this;
    state->connection = connection;
    state->request.method = method;
    state->request.path = url;
    *req_cls = new std::shared_ptr<RequestState>(state);

    MHD_get_connection_values(connection, MHD_HEADER_KIND, on_header, state.get());
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, on_query, state.get());
    // The head as received (request line and header lines, before any decoding or trimming).
    const MHD_ConnectionInfo* size =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    const std::size_t head = size != nullptr ? size->header_size : limits.max_head_bytes + 1;
    if (head > limits.max_head_bytes) {
      return queue(connection, error_response(431, "header_too_large",
                                              fmt::format("request head over {} bytes",
                                                          limits.max_head_bytes)));
    }
    // The body limit is decided from Content-Length before any byte of the body is read.
    const std::string_view length = state->request.header("content-length");
    if (!length.empty()) {
      std::uint64_t n = 0;
      const auto [p, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
      if (ec == std::errc::result_out_of_range || (ec == std::errc{} && n > limits.max_body_bytes))
        return queue(connection, too_large());
    }
    return MHD_YES;
  }

  Response too_large() const {
    return error_response(413, "too_large",
                          fmt::format("body over {} bytes", limits.max_body_bytes));
  }

  MHD_Result on_body(RequestState& r, const char* data, std::size_t* size) {
    const std::size_t n = *size;
    *size = 0;
    if (r.rejected) {
      // Read and thrown away, so that closing does not reset the connection (which can
      // destroy the 413 before the client reads it); bounded in bytes here and in time by the
      // head deadline set below.
      r.discarded += n;
      return r.discarded > kMaxDiscardBytes ? MHD_NO : MHD_YES;
    }
    if (r.request.body.size() + n > limits.max_body_bytes) {
      // A chunked body has no length up front. MHD cannot queue an answer in the middle of a
      // body, so the 413 is written on the socket here (its write side is idle: the previous
      // answer on this connection is complete before this request's body is read), the write
      // side is shut, and the rest of the body is discarded unparsed until the client stops or
      // the connection's deadline passes.
      const Response answer = too_large();
      const std::string raw = fmt::format(
          "HTTP/1.1 413 Payload Too Large\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
          "Connection: close\r\n\r\n{}",
          answer.content_type, answer.body.size(), answer.body);
      const MHD_ConnectionInfo* fd =
          MHD_get_connection_info(r.connection, MHD_CONNECTION_INFO_CONNECTION_FD);
      if (fd != nullptr) {
        [[maybe_unused]] const ssize_t sent =
            ::send(fd->connect_fd, raw.data(), raw.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::shutdown(fd->connect_fd, SHUT_WR);
      }
      r.rejected = true;
      r.request.body.clear();
      r.request.body.shrink_to_fit();
      const MHD_ConnectionInfo* ctx =
          MHD_get_connection_info(r.connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
      if (ctx != nullptr && ctx->socket_context != nullptr)
        wait_for_head(static_cast<ConnState*>(ctx->socket_context));  // reused as the linger
      return MHD_YES;
    }
    r.request.body.append(data, n);
    return MHD_YES;
  }

  MHD_Result dispatch(const std::shared_ptr<RequestState>& state) {
    RequestState& r = *state;
    r.dispatched = true;
    std::weak_ptr<RequestState> weak = state;
    handler(r.request, [weak](Response answer) {
      auto s = weak.lock();
      if (!s || s->connection == nullptr || s->answer) return;
      s->answer = std::move(answer);
      if (s->suspended) {
        Impl* server = s->server;
        s->suspended = false;
        server->suspended.erase(s->waiting);
        MHD_resume_connection(s->connection);
        server->schedule_run();
      }
    });
    if (r.answer) return queue(r.connection, *r.answer);
    MHD_suspend_connection(r.connection);
    r.suspended = true;
    r.deadline = uv_now(loop) + static_cast<std::uint64_t>(limits.handler_timeout_ms);
    suspended.push_back(state);
    r.waiting = std::prev(suspended.end());
    return MHD_YES;
  }

  static MHD_Result on_access(void* cls, MHD_Connection* connection, const char* url,
                              const char* method, const char*, const char* upload_data,
                              std::size_t* upload_data_size, void** req_cls) {
    auto* self = static_cast<Impl*>(cls);
    if (*req_cls == nullptr) return self->begin_request(connection, url, method, req_cls);
    const std::shared_ptr<RequestState> state =
        *static_cast<std::shared_ptr<RequestState>*>(*req_cls);
    if (*upload_data_size != 0) return self->on_body(*state, upload_data, upload_data_size);
    if (state->rejected) return MHD_NO;  // its 413 is on the wire: close
    if (state->answer) return queue(connection, *state->answer);
    if (state->dispatched) return MHD_YES;  // still waiting for the handler
    if (self->stopped || self->draining)
      return queue(connection, error_response(503, "unavailable", "the server is stopping"), true);
    return self->dispatch(state);
  }

  static void on_log(void*, const char* fmt_text, va_list ap) {
    char line[512];
    std::vsnprintf(line, sizeof line, fmt_text, ap);
    std::string_view text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    log::debug("http", {{"detail", text}});
  }
};

Server::Server(uv_loop_s* loop, Handler handler, Limits limits) : impl_(std::make_unique<Impl>()) {
  impl_->loop = loop;
  impl_->handler = std::move(handler);
  impl_->limits = limits;
}

Server::~Server() {
  stop();
  if (impl_->open_handles > 0) {
    impl_->orphaned = true;
    impl_.release();  // deleted by the last close callback
  }
}

int Server::port() const noexcept {
  return impl_->bound_port;
}

Status Server::listen(const std::string& host, int port) {
  Impl& s = *impl_;
  if (s.daemon != nullptr || s.stopped)
    return make_error(Errc::invalid_config, "HTTP server already listening or stopped");
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    addr_len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    addr_len = sizeof *v6;
  } else {
    return make_error(Errc::invalid_config, fmt::format("'{}' is not an IP address", host));
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::unavailable, fmt::format("socket: {}", std::strerror(errno)));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 || ::listen(fd, 511) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(Errc::unavailable,
                      fmt::format("cannot listen on {}:{}: {}", host, port, std::strerror(err)));
  }
  s.listen_fd = fd;
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  s.bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  // A connection with no byte for this long (a stalled body) is closed by MHD; an incomplete
  // head, also the next one on an idle keep-alive connection, is closed by the sweep at
  // header_timeout_ms whatever trickles in.
  const auto idle_s = static_cast<unsigned>(
      std::max<std::int64_t>(10, 2 * ((s.limits.header_timeout_ms + 999) / 1000)));
  // The per-connection memory pool holds the request head (MHD answers 431 itself for a head
  // beyond it); the 16 KiB head limit is ours, checked once the head is parsed.
  // MHD zeroes the pool for every request, so it is kept as small as the head limit allows.
  const std::size_t pool = std::max<std::size_t>(32 * 1024, s.limits.max_head_bytes + 16 * 1024);
  s.daemon = MHD_start_daemon(
      MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
      nullptr, nullptr, &Impl::on_access, &s, MHD_OPTION_CONNECTION_LIMIT,
      s.limits.max_connections + 1, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed,
      &s, MHD_OPTION_NOTIFY_CONNECTION, &Impl::on_connection, &s, MHD_OPTION_EXTERNAL_LOGGER,
      &Impl::on_log, &s, MHD_OPTION_END);
  const MHD_DaemonInfo* info =
      s.daemon != nullptr ? MHD_get_daemon_info(s.daemon, MHD_DAEMON_INFO_EPOLL_FD) : nullptr;
  if (info == nullptr) {
    if (s.daemon != nullptr) MHD_stop_daemon(s.daemon);
    s.daemon = nullptr;
    ::close(s.listen_fd);
    s.listen_fd = -1;
    return make_error(Errc::unavailable,
                      fmt::format("cannot start the HTTP server on {}:{}", host, port));
  }
  uv_poll_init(s.loop, &s.poll, info->epoll_fd);
  s.poll.data = &s;
  uv_poll_start(&s.poll, UV_READABLE,
                [](uv_poll_t* p, int, int) { static_cast<Impl*>(p->data)->run(); });
  uv_poll_init(s.loop, &s.listen_poll, s.listen_fd);
  s.listen_poll.data = &s;
  uv_timer_init(s.loop, &s.accept_retry);
  s.accept_retry.data = &s;
  s.watch_listener();
  uv_timer_init(s.loop, &s.run_timer);
  s.run_timer.data = &s;
  uv_timer_init(s.loop, &s.sweep_timer);
  s.sweep_timer.data = &s;
  const auto period = static_cast<std::uint64_t>(
      std::clamp<std::int64_t>(s.limits.header_timeout_ms / 10, 10, 250));
  uv_timer_start(
      &s.sweep_timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->sweep(); }, period, period);
  uv_unref(reinterpret_cast<uv_handle_t*>(&s.sweep_timer));
  s.arm_timer();
  return Status::success();
}

void Server::drain() noexcept {
  Impl& s = *impl_;
  if (s.stopped || s.draining || s.daemon == nullptr) return;
  s.draining = true;
  s.listening = false;
  uv_timer_stop(&s.accept_retry);
  // Closed now, not at stop(): the kernel would go on completing handshakes into the backlog
  // during the drain, and reset them all at the end.
  s.close_handle(reinterpret_cast<uv_handle_t*>(&s.listen_poll));
  ::close(s.listen_fd);
  s.listen_fd = -1;
}

void Server::stop() noexcept {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  if (s.daemon == nullptr) return;
  // Requests still waiting for their handler are answered 503 before the daemon goes.
  while (!s.suspended.empty()) {
    std::shared_ptr<RequestState> r = s.suspended.front();
    s.suspended.pop_front();
    r->suspended = false;
    r->answer = error_response(503, "unavailable", "the server is stopping");
    MHD_resume_connection(r->connection);
  }
  for (int i = 0; i < 3; ++i) MHD_run(s.daemon);
  // libuv stops watching the descriptors (uv_close) before they are closed.
  if (!s.draining) s.close_handle(reinterpret_cast<uv_handle_t*>(&s.listen_poll));
  s.close_handle(reinterpret_cast<uv_handle_t*>(&s.poll));
  s.close_handle(reinterpret_cast<uv_handle_t*>(&s.run_timer));
  s.close_handle(reinterpret_cast<uv_handle_t*>(&s.sweep_timer));
  s.close_handle(reinterpret_cast<uv_handle_t*>(&s.accept_retry));
  MHD_stop_daemon(s.daemon);
  s.daemon = nullptr;
  if (s.listen_fd >= 0) ::close(s.listen_fd);
  s.listen_fd = -1;
}

}  // namespace sagaflow::http
