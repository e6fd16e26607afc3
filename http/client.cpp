// http::Client on libcurl's multi interface, driven by the libuv loop (see client.hpp).
//
// curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one uv_poll per socket,
// started for CURL_POLL_IN/OUT/INOUT, closed on CURL_POLL_REMOVE) and when to call it back
// (CURLMOPT_TIMERFUNCTION: one uv_timer); every event calls curl_multi_socket_action and then
// curl_multi_info_read collects the finished transfers. One CURLM for the whole client, so its
// connection cache is shared and keep-alive connections are reused across attempts.
//
// Scheduling: a pool (ClientRequest::pool) runs at most max_per_pool transfers; its other
// attempts wait FIFO. A pool that has waiting attempts and a free slot of its own is "ready";
// ready pools are served round-robin while fewer than max_total transfers run.
//
// Callbacks: done() always goes through the deferred queue, drained by a zero uv_timer, so it
// never runs inside post() nor inside curl's callbacks, and may post() or stop() freely.
//
// Lifetime: the Impl owns every uv handle; it counts the open ones and is freed (by the
// Client's destructor, or by the last close callback when the Client is already gone) only
// once all of them are closed, so no libuv callback can reach freed memory.
#include "http/client.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sagaflow::http {

namespace {

std::once_flag g_curl_init;

void global_init() {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

uv_handle_t* as_handle(void* h) {
  return static_cast<uv_handle_t*>(h);
}

std::string address_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    sockaddr_in v4{};
    std::memcpy(&v4, sa, sizeof v4);
    ::inet_ntop(AF_INET, &v4.sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    sockaddr_in6 v6{};
    std::memcpy(&v6, sa, sizeof v6);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, buf, sizeof buf);
  } else {
    return "family " + std::to_string(sa->sa_family);
  }
  return buf;
}

bool iequals_prefix(std::string_view line, std::string_view lower_name) {
  if (line.size() < lower_name.size()) return false;
  for (std::size_t i = 0; i < lower_name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != lower_name[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return std::string(trim(s));
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

Millis steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

struct Transfer {
  Client::Impl* impl = nullptr;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  ClientRequest request;
  Client::Done done;
  std::string retry_after;
  std::string refused_ip;  // the last address allow_address refused
  bool refused = false;
  bool cut = false;  // the body passed max_response_bytes
  std::size_t body_bytes = 0;
  Millis started_ms = 0;
  char errbuf[CURL_ERROR_SIZE] = {};

  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (headers != nullptr) curl_slist_free_all(headers);
  }
};

struct SocketWatch {
  uv_poll_t poll{};
  Client::Impl* impl = nullptr;
  curl_socket_t fd = CURL_SOCKET_BAD;
  bool closing = false;
};

struct Pool {
  std::size_t running = 0;
  std::deque<std::unique_ptr<Transfer>> waiting;
  bool ready_listed = false;  // in Impl::ready
};

struct Client::Impl {
  uv_loop_t* loop;
  ClientOptions options;
  CURLM* multi = nullptr;
  uv_timer_t curl_timer{};
  uv_timer_t defer_timer{};
  std::size_t open_handles = 0;
  bool stopping = false;
  bool defer_closing = false;
  bool all_closed = false;
  bool orphaned = false;  // the Client is gone: free this when the last handle closes
  std::function<void()> closed;

  std::unordered_map<std::string, Pool, StringHash, std::equal_to<>> pools;
  std::deque<std::string> ready;  // pools with waiting attempts and a free slot, round-robin
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> running;
  std::size_t queued_count = 0;
  std::unordered_set<SocketWatch*> sockets;
  std::deque<std::pair<Done, ClientResponse>> deferred;

  Impl(uv_loop_t* l, ClientOptions o) : loop(l), options(std::move(o)) {
    global_init();
    uv_timer_init(loop, &curl_timer);
    curl_timer.data = this;
    uv_timer_init(loop, &defer_timer);
    defer_timer.data = this;
    open_handles = 2;
    multi = curl_multi_init();
    if (multi != nullptr) {
      curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_curl_socket);
      curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
      curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::on_curl_timer);
      curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    }
  }

  ~Impl() {
    // Only reached with every handle closed and the multi cleaned up (stop() ran).
    if (multi != nullptr) curl_multi_cleanup(multi);
  }

  // ---- handles -------------------------------------------------------------------------

  void close_handle(uv_handle_t* h) {
    if (uv_is_closing(h) != 0) return;
    uv_close(h, &Impl::on_closed);
  }

  static void on_closed(uv_handle_t* h) {
    Impl* self = nullptr;
    if (h->type == UV_POLL) {
      auto* w = static_cast<SocketWatch*>(h->data);
      self = w->impl;
      delete w;
    } else {
      self = static_cast<Impl*>(h->data);
    }
    if (--self->open_handles > 0) return;
    self->all_closed = true;
    if (self->orphaned) {
      delete self;
      return;
    }
    // May destroy the Client (and so this Impl): touch nothing after it.
    auto closed = std::move(self->closed);
    if (closed) closed();
  }

  // ---- curl's callbacks (no curl_multi_* calls in here) ---------------------------------

  static int on_curl_socket(CURL* /*easy*/, curl_socket_t fd, int what, void* userp,
                            void* socketp) {
    auto* self = static_cast<Impl*>(userp);
    auto* w = static_cast<SocketWatch*>(socketp);
    if (what == CURL_POLL_REMOVE) {
      if (w != nullptr) {
        self->close_watch(w);
        curl_multi_assign(self->multi, fd, nullptr);
      }
      return 0;
    }
    if (w == nullptr) {
      w = new SocketWatch;
      w->impl = self;
      w->fd = fd;
      if (uv_poll_init_socket(self->loop, &w->poll, fd) != 0) {
        delete w;
        return -1;
      }
      w->poll.data = w;
      ++self->open_handles;
      self->sockets.insert(w);
      curl_multi_assign(self->multi, fd, w);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
    uv_poll_start(&w->poll, events, &Impl::on_poll);
    return 0;
  }

  void close_watch(SocketWatch* w) {
    if (w->closing) return;
    w->closing = true;
    sockets.erase(w);
    uv_poll_stop(&w->poll);
    close_handle(as_handle(&w->poll));
  }

  static int on_curl_timer(CURLM* /*multi*/, long timeout_ms, void* userp) {
    auto* self = static_cast<Impl*>(userp);
    if (self->stopping) return 0;
    if (timeout_ms < 0) {
      uv_timer_stop(&self->curl_timer);
    } else {
      uv_timer_start(&self->curl_timer, &Impl::on_timer, static_cast<std::uint64_t>(timeout_ms), 0);
    }
    return 0;
  }

  // ---- libuv's callbacks ----------------------------------------------------------------

  static void on_poll(uv_poll_t* h, int status, int events) {
    auto* w = static_cast<SocketWatch*>(h->data);
    Impl* self = w->impl;
    if (w->closing || self->multi == nullptr || self->stopping) return;
    int flags = 0;
    if (status < 0) {
      flags = CURL_CSELECT_ERR;
    } else {
      if ((events & UV_READABLE) != 0) flags |= CURL_CSELECT_IN;
      if ((events & UV_WRITABLE) != 0) flags |= CURL_CSELECT_OUT;
    }
    int still_running = 0;
    curl_multi_socket_action(self->multi, w->fd, flags, &still_running);
    self->collect();
  }

  static void on_timer(uv_timer_t* h) {
    auto* self = static_cast<Impl*>(h->data);
    if (self->multi == nullptr || self->stopping) return;
    int still_running = 0;
    curl_multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &still_running);
    self->collect();
  }

  static void on_defer(uv_timer_t* h) {
    auto* self = static_cast<Impl*>(h->data);
    // A done may post() (queued behind) or stop() (more "stopped" answers): drain them all.
    while (!self->deferred.empty()) {
      auto [done, response] = std::move(self->deferred.front());
      self->deferred.pop_front();
      if (done) done(std::move(response));
    }
    if (self->stopping) self->finish_stop();
  }

  // ---- transfers ------------------------------------------------------------------------

  void defer(Done done, ClientResponse response) {
    deferred.emplace_back(std::move(done), std::move(response));
    if (!defer_closing) uv_timer_start(&defer_timer, &Impl::on_defer, 0, 0);
  }

  void post(ClientRequest request, Done done) {
    if (stopping || multi == nullptr) {
      ClientResponse r;
      r.error = stopping ? "stopped" : "curl_multi_init failed";
      defer(std::move(done), std::move(r));
      return;
    }
    auto t = std::make_unique<Transfer>();
    t->impl = this;
    t->request = std::move(request);
    t->done = std::move(done);
    const std::string name = t->request.pool;
    Pool& pool = pools[name];
    pool.waiting.push_back(std::move(t));
    ++queued_count;
    list_if_ready(name, pool);
    pump();
  }

  void list_if_ready(const std::string& name, Pool& pool) {
    if (!pool.ready_listed && !pool.waiting.empty() && pool.running < options.max_per_pool) {
      pool.ready_listed = true;
      ready.push_back(name);
    }
  }

  void forget_if_idle(const std::string& name) {
    auto it = pools.find(name);
    if (it != pools.end() && it->second.running == 0 && it->second.waiting.empty() &&
        !it->second.ready_listed) {
      pools.erase(it);
    }
  }

  // Starts waiting attempts while slots are free: round-robin over the ready pools.
  void pump() {
    const std::size_t max_total = std::max<std::size_t>(options.max_total, 1);
    while (!stopping && running.size() < max_total && !ready.empty()) {
      std::string name = std::move(ready.front());
      ready.pop_front();
      Pool& pool = pools[name];
      pool.ready_listed = false;
      if (pool.waiting.empty() || pool.running >= options.max_per_pool) {
        forget_if_idle(name);
        continue;
      }
      std::unique_ptr<Transfer> t = std::move(pool.waiting.front());
      pool.waiting.pop_front();
      --queued_count;
      ++pool.running;
      list_if_ready(name, pool);
      start(std::move(t));
    }
  }

  void start(std::unique_ptr<Transfer> t) {
    t->started_ms = steady_ms();
    std::string setup_error;
    if (!configure(*t, setup_error)) {
      finish(std::move(t), CURLE_FAILED_INIT, setup_error);
      return;
    }
    CURL* easy = t->easy;
    running.emplace(easy, std::move(t));
    const CURLMcode rc = curl_multi_add_handle(multi, easy);
    if (rc != CURLM_OK) {
      auto it = running.find(easy);
      std::unique_ptr<Transfer> back = std::move(it->second);
      running.erase(it);
      finish(std::move(back), CURLE_FAILED_INIT, curl_multi_strerror(rc));
    }
  }

  bool configure(Transfer& t, std::string& error) {
    t.easy = curl_easy_init();
    if (t.easy == nullptr) {
      error = "curl_easy_init failed";
      return false;
    }
    CURL* e = t.easy;
    bool has_content_type = false;
    bool has_expect = false;
    for (const auto& [name, value] : t.request.headers) {
      // "Name;" is how curl is told to send a header with an empty value.
      const std::string line = value.empty() ? name + ";" : name + ": " + value;
      t.headers = curl_slist_append(t.headers, line.c_str());
      if (iequals_prefix(name, "content-type") && name.size() == 12) has_content_type = true;
      if (iequals_prefix(name, "expect") && name.size() == 6) has_expect = true;
    }
    if (!has_expect) t.headers = curl_slist_append(t.headers, "Expect:");
    if (!has_content_type) t.headers = curl_slist_append(t.headers, "Content-Type:");

    bool ok = true;
    auto set = [&ok](CURLcode rc) { ok = ok && rc == CURLE_OK; };
    set(curl_easy_setopt(e, CURLOPT_PRIVATE, &t));
    set(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf));
    set(curl_easy_setopt(e, CURLOPT_URL, t.request.url.c_str()));
    set(curl_easy_setopt(e, CURLOPT_POST, 1L));
    set(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(t.request.body.size())));
    set(curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.request.body.data()));  // kept alive in t
    set(curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers));
    set(curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1)));
    set(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L));
    set(curl_easy_setopt(e, CURLOPT_PROXY, ""));
    set(curl_easy_setopt(e, CURLOPT_NOPROXY, "*"));
    set(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
    set(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
    set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L));
    set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L));
    set(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         static_cast<long>(std::max<Millis>(t.request.timeout_ms, 1))));
    set(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
    set(curl_easy_setopt(e, CURLOPT_USERAGENT, options.user_agent.c_str()));
    set(curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Impl::on_open_socket));
    set(curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &t));
    set(curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::on_header));
    set(curl_easy_setopt(e, CURLOPT_HEADERDATA, &t));
    set(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::on_write));
    set(curl_easy_setopt(e, CURLOPT_WRITEDATA, &t));
    if (!ok) error = "curl_easy_setopt failed (libcurl too old or built without http/https?)";
    return ok;
  }

  static curl_socket_t on_open_socket(void* clientp, curlsocktype /*purpose*/,
                                      curl_sockaddr* address) {
    auto* t = static_cast<Transfer*>(clientp);
    const auto* sa = &address->addr;
    const auto& allow = t->impl->options.allow_address;
    if (allow && !allow(sa)) {
      t->refused = true;
      t->refused_ip = address_text(sa);
      return CURL_SOCKET_BAD;
    }
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const std::string_view line(data, size * n);
    if (iequals_prefix(line, "http/")) {
      t->retry_after.clear();  // a new response (after a 1xx): its own headers only
    } else if (iequals_prefix(line, "retry-after:")) {
      t->retry_after = std::string(trim(line.substr(12)));
    }
    return size * n;
  }

  static std::size_t on_write(char* /*data*/, std::size_t size, std::size_t n, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    t->body_bytes += size * n;
    if (t->body_bytes > t->impl->options.max_response_bytes) {
      t->cut = true;
      return 0;  // CURLE_WRITE_ERROR: the transfer (and its connection) is cut short
    }
    return size * n;
  }

  // Reads the finished transfers (after curl_multi_socket_action returned).
  void collect() {
    int left = 0;
    while (multi != nullptr) {
      CURLMsg* msg = curl_multi_info_read(multi, &left);
      if (msg == nullptr) break;
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      const CURLcode result = msg->data.result;
      auto it = running.find(easy);
      if (it == running.end()) continue;
      std::unique_ptr<Transfer> t = std::move(it->second);
      running.erase(it);
      curl_multi_remove_handle(multi, easy);
      finish(std::move(t), result, {});
    }
    pump();
  }

  // Frees the transfer's slot and queues its done with the answer.
  void finish(std::unique_ptr<Transfer> t, CURLcode result, std::string detail) {
    ClientResponse r;
    r.elapsed_ms = steady_ms() - t->started_ms;
    long status = 0;
    if (t->easy != nullptr) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (result == CURLE_OK || (result == CURLE_WRITE_ERROR && t->cut && status > 0)) {
      r.status = status;
      r.retry_after = std::move(t->retry_after);
    } else if (t->refused && status == 0) {
      r.refused_address = true;
      r.error = "address refused: " + t->refused_ip;
    } else {
      r.timed_out = result == CURLE_OPERATION_TIMEDOUT;
      std::string text = !detail.empty()     ? std::move(detail)
                         : t->errbuf[0] != 0 ? std::string(t->errbuf)
                                             : std::string(curl_easy_strerror(result));
      r.error = one_line(std::move(text));
      if (r.error.empty()) r.error = "curl error " + std::to_string(static_cast<int>(result));
    }
    const std::string name = t->request.pool;
    Done done = std::move(t->done);
    t.reset();
    auto pit = pools.find(name);
    if (pit != pools.end()) {
      --pit->second.running;
      list_if_ready(name, pit->second);
      forget_if_idle(name);
    }
    defer(std::move(done), std::move(r));
  }

  // ---- stop -----------------------------------------------------------------------------

  void stop(std::function<void()> on_closed_cb) {
    if (stopping) return;
    stopping = true;
    closed = std::move(on_closed_cb);
    uv_timer_stop(&curl_timer);
    // Abort the running transfers, then the waiting ones, in the order they came.
    std::vector<std::unique_ptr<Transfer>> aborted;
    for (auto& [easy, t] : running) {
      if (multi != nullptr) curl_multi_remove_handle(multi, easy);
      aborted.push_back(std::move(t));
    }
    running.clear();
    std::sort(aborted.begin(), aborted.end(),
              [](const auto& a, const auto& b) { return a->started_ms < b->started_ms; });
    for (auto& [name, pool] : pools) {
      for (auto& t : pool.waiting) aborted.push_back(std::move(t));
      pool.waiting.clear();
    }
    pools.clear();
    ready.clear();
    queued_count = 0;
    for (auto& t : aborted) {
      ClientResponse r;
      r.error = "stopped";
      if (t->started_ms != 0) r.elapsed_ms = steady_ms() - t->started_ms;
      Done done = std::move(t->done);
      t.reset();
      defer(std::move(done), std::move(r));
    }
    // Closes every cached connection (socket callbacks may still run: they close watches).
    if (multi != nullptr) curl_multi_cleanup(multi);
    multi = nullptr;
    for (SocketWatch* w : std::vector<SocketWatch*>(sockets.begin(), sockets.end())) {
      close_watch(w);
    }
    close_handle(as_handle(&curl_timer));
    // The defer timer closes once the "stopped" answers ran (on_defer calls finish_stop).
    uv_timer_start(&defer_timer, &Impl::on_defer, 0, 0);
  }

  void finish_stop() {
    if (defer_closing || !deferred.empty()) return;
    defer_closing = true;
    uv_timer_stop(&defer_timer);
    close_handle(as_handle(&defer_timer));
  }
};

Client::Client(uv_loop_s* loop, ClientOptions options)
    : impl_(new Impl(loop, std::move(options))) {}

Client::~Client() {
  if (impl_->all_closed) {
    delete impl_;
    return;
  }
  impl_->orphaned = true;
  impl_->closed = nullptr;
  if (!impl_->stopping) impl_->stop(nullptr);
}

void Client::post(ClientRequest request, Done done) {
  impl_->post(std::move(request), std::move(done));
}

std::size_t Client::in_flight() const noexcept {
  return impl_->running.size();
}

std::size_t Client::queued() const noexcept {
  return impl_->queued_count;
}

std::size_t Client::in_flight(std::string_view pool) const noexcept {
  auto it = impl_->pools.find(pool);
  return it == impl_->pools.end() ? 0 : it->second.running;
}

void Client::stop(std::function<void()> closed) {
  impl_->stop(std::move(closed));
}

}  // namespace sagaflow::http
