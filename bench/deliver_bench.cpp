// Outgoing webhook deliveries (CONTRACT.md section 9), side by side in one run against the same
// receiver on loopback:
//
//   bare: a bare libcurl multi loop (curl_multi_perform + curl_multi_poll) POSTing N ~400-byte
//         JSON events with the same header set, at most 16 transfers at once to one host with
//         keep-alive: the transport's ceiling.
//   ours: one `sagaflow deliver` (its own Redis and RabbitMQ, started here) with one endpoint
//         (`--events '*'`) draining a backlog of N events published to sagaflow.events before
//         it starts; timed from the first request the receiver gets to the N-th.
// Rounds alternate bare / ours; best against best gives the ratio (target >= 0.8 and
// >= 5,000/s). Then "isolation": a second endpoint whose receiver never answers
// (SAGAFLOW_DELIVERY_TIMEOUT_MS=30000), and the fast endpoint's rate while it hangs, next to its
// rate alone in the last ours round (target >= 0.9). CPU seconds per 1,000 deliveries of the
// deliver process, Redis, RabbitMQ and the receiver thread come from /proc over each timed span.
//
// The receiver is a minimal epoll loop on a thread of this process (HTTP/1.1, keep-alive,
// "200 OK" with an empty body per request), so it costs little next to what it measures.
//
// Usage: deliver_bench [N=20000] [rounds=2]
// (needs redis-server and rabbitmq-server; starts its own on free loopback ports, and the
// sagaflow binary from SAGAFLOW_BINARY or ./app/sagaflow)
#include <amqp.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "core/config.hpp"
#include "support/servers.hpp"

using namespace std::chrono;
using Clock = steady_clock;
using sagaflow::testing::Process;
using sagaflow::testing::RabbitServer;
using sagaflow::testing::RedisServer;
using Env = std::vector<std::pair<std::string, std::string>>;

namespace {

constexpr int kConcurrency = 16;  // the deliverer's per-endpoint cap, and the bare loop's

std::string event_body(const std::string& id) {
  std::string body = R"({"id":")" + id + R"(","type":"order.cancelled","store_id":"store_1",)" +
                     R"("data":{"order_id":"ord_)" + id + R"(","reason":"customer","pad":")";
  body.append(400 > body.size() + 4 ? 400 - body.size() - 4 : 0, 'x');
  return body + "\"}}";
}

bool find_ci(const std::string& hay, std::size_t end, const char* needle, std::size_t* at) {
  const std::size_t len = std::strlen(needle);
  for (std::size_t i = 0; i + len <= end; ++i) {
    std::size_t k = 0;
    while (k < len && std::tolower(static_cast<unsigned char>(hay[i + k])) == needle[k]) ++k;
    if (k == len) {
      *at = i + len;
      return true;
    }
  }
  return false;
}

// A minimal HTTP/1.1 receiver: one epoll thread, keep-alive, a 200 with an empty body per
// request (or, hanging, never an answer). It stamps every complete request.
class Receiver {
 public:
  explicit Receiver(bool hang = false) : hang_(hang) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 1024) != 0)
      throw std::runtime_error("receiver: listen failed");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_ = pipe_pair();
    add(listen_fd_);
    add(wake_[0]);
    thread_ = std::thread([this] { run(); });
  }
  ~Receiver() {
    stop_ = true;
    const char c = 1;
    [[maybe_unused]] const auto w = ::write(wake_[1], &c, 1);
    thread_.join();
    for (auto& [fd, in] : conns_) ::close(fd);
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    ::close(epoll_);
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  int port() const { return port_; }
  std::size_t count() const { return count_.load(); }
  void reset() {
    std::lock_guard lock(mutex_);
    times_.clear();
    count_ = 0;
  }
  // Time from the first request to the n-th (1-based), seconds; 0 if fewer came.
  double span(std::size_t n) {
    std::lock_guard lock(mutex_);
    if (n < 2 || times_.size() < n) return 0;
    return duration<double>(times_[n - 1] - times_[0]).count();
  }
  double cpu() const {  // the receiver thread's CPU seconds
    const long tid = tid_.load();
    return tid > 0 ? sagaflow::bench::stat_cpu("/proc/self/task/" + std::to_string(tid) + "/stat")
                   : 0;
  }
  std::size_t connections() const { return accepted_.load(); }

 private:
  static std::array<int, 2> pipe_pair() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe failed");
    return {p[0], p[1]};
  }
  void add(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }
  void run() {
    tid_ = static_cast<long>(::syscall(SYS_gettid));
    static const char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    std::vector<epoll_event> events(256);
    char buf[65536];
    std::string out;
    while (!stop_) {
      const int k = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 200);
      for (int e = 0; e < k; ++e) {
        const int fd = events[static_cast<std::size_t>(e)].data.fd;
        if (fd == wake_[0]) continue;
        if (fd == listen_fd_) {
          for (;;) {
            const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0) break;
            const int one = 1;
            ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            conns_[c];
            accepted_++;
            add(c);
          }
          continue;
        }
        const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
        if (got <= 0) {
          if (got < 0 && errno == EAGAIN) continue;
          ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
          ::close(fd);
          conns_.erase(fd);
          continue;
        }
        std::string& in = conns_[fd];
        in.append(buf, static_cast<std::size_t>(got));
        out.clear();
        std::size_t done = 0;
        for (;;) {
          const auto head_end = in.find("\r\n\r\n");
          if (head_end == std::string::npos) break;
          std::size_t at = 0, len = 0;
          if (find_ci(in, head_end, "\ncontent-length:", &at))
            len = std::strtoul(in.c_str() + at, nullptr, 10);
          if (in.size() < head_end + 4 + len) {
            std::size_t x = 0;
            if (find_ci(in, head_end, "\nexpect: 100-continue", &x)) out += kContinue;
            break;
          }
          in.erase(0, head_end + 4 + len);
          ++done;
          if (!hang_) out += kOk;
        }
        if (done > 0) {
          const auto now = Clock::now();
          std::lock_guard lock(mutex_);
          for (std::size_t i = 0; i < done; ++i) times_.push_back(now);
          count_ += done;
        }
        std::size_t sent = 0;
        while (sent < out.size()) {  // tiny answers: the socket buffer always takes them
          const ssize_t w = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
          if (w > 0) {
            sent += static_cast<std::size_t>(w);
          } else if (w < 0 && errno == EAGAIN) {
            std::this_thread::yield();
          } else {
            break;
          }
        }
      }
    }
  }

  bool hang_;
  int listen_fd_ = -1, epoll_ = -1, port_ = 0;
  std::array<int, 2> wake_{};
  std::map<int, std::string> conns_;
  std::mutex mutex_;
  std::vector<Clock::time_point> times_;
  std::atomic<std::size_t> count_{0}, accepted_{0};
  std::atomic<long> tid_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Figures {
  double rate = 0;         // deliveries/s, first request to the N-th
  double deliver_cpu = 0;  // CPU seconds per 1,000 deliveries
  double redis_cpu = 0;
  double rabbit_cpu = 0;
  double receiver_cpu = 0;
  double client_cpu = 0;  // the bare loop (this process minus the receiver thread)
};

// --- bare --------------------------------------------------------------------------------------

std::size_t discard(char*, std::size_t size, std::size_t n, void*) {
  return size * n;
}

Figures bare_round(Receiver& rx, int n, int round) {
  rx.reset();
  const std::string url = "http://127.0.0.1:" + std::to_string(rx.port()) + "/x";
  std::vector<std::string> bodies;
  bodies.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    bodies.push_back(event_body("bare_" + std::to_string(round) + "_" + std::to_string(i)));
  // Same header set and sizes as a delivery (signatures are placeholders of the right length).
  const std::string sig_b64(44, 'A'), sig_hex(64, 'a');
  CURLM* m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(kConcurrency));
  struct Slot {
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
  };
  std::vector<Slot> slots(kConcurrency);
  int next = 0, done = 0, failed = 0;
  const auto start = [&](Slot& s) {
    const std::string& body = bodies[static_cast<std::size_t>(next)];
    const std::string id = "bare_" + std::to_string(round) + "_" + std::to_string(next);
    const std::string ts = std::to_string(std::time(nullptr));
    ++next;
    if (s.headers != nullptr) curl_slist_free_all(s.headers);
    s.headers = nullptr;
    for (const std::string& h :
         {std::string("Content-Type: application/json"), "webhook-id: " + id,
          "webhook-timestamp: " + ts, "webhook-signature: v1," + sig_b64,
          "X-Sagaflow-Signature: t=" + ts + ",v1=" + sig_hex, std::string("Expect:")})
      s.headers = curl_slist_append(s.headers, h.c_str());
    curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, s.headers);
    curl_easy_setopt(s.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(s.easy, CURLOPT_POSTFIELDS, body.c_str());
    curl_multi_add_handle(m, s.easy);
  };
  for (auto& s : slots) {
    s.easy = curl_easy_init();
    curl_easy_setopt(s.easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(s.easy, CURLOPT_POST, 1L);
    curl_easy_setopt(s.easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s.easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(s.easy, CURLOPT_PROXY, "");
    curl_easy_setopt(s.easy, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(s.easy, CURLOPT_PRIVATE, &s);
    curl_easy_setopt(s.easy, CURLOPT_USERAGENT, "sagaflow-webhooks/1");
  }
  const double self0 = sagaflow::bench::process_cpu(::getpid()) - rx.cpu();
  const double rx0 = rx.cpu();
  for (auto& s : slots)
    if (next < n) start(s);
  int running = 0;
  while (done < n) {
    curl_multi_perform(m, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      long status = 0;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result != CURLE_OK || status != 200) failed++;
      ++done;
      char* priv = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      Slot& s = *reinterpret_cast<Slot*>(priv);
      curl_multi_remove_handle(m, s.easy);
      if (next < n) start(s);
    }
    if (done < n) curl_multi_poll(m, nullptr, 0, 100, nullptr);
  }
  Figures f;
  const double rx_cpu = rx.cpu() - rx0;
  f.client_cpu = (sagaflow::bench::process_cpu(::getpid()) - rx.cpu() - self0) * 1000.0 / n;
  f.receiver_cpu = rx_cpu * 1000.0 / n;
  for (auto& s : slots) {
    curl_slist_free_all(s.headers);
    curl_easy_cleanup(s.easy);
  }
  curl_multi_cleanup(m);
  const double secs = rx.span(static_cast<std::size_t>(n));
  f.rate = secs > 0 ? (n - 1) / secs : 0;
  if (failed > 0) std::printf("  (bare: %d transfers failed)\n", failed);
  return f;
}

// --- ours --------------------------------------------------------------------------------------

struct Cluster {
  RedisServer& redis;
  RabbitServer& rabbit;
  sagaflow::AmqpEndpoint amqp;
  std::string bin;
  Env env;
};

void publish_backlog(Cluster& c, int n, const std::string& prefix) {
  amqp_connection_state_t conn = sagaflow::bench::bare_connect(c.amqp);
  amqp_basic_properties_t p = sagaflow::bench::persistent_json();
  for (int i = 0; i < n; ++i) {
    const std::string id = prefix + std::to_string(i);
    const std::string body = event_body(id);
    p.message_id = amqp_cstring_bytes(id.c_str());
    amqp_basic_publish(conn, 1, amqp_cstring_bytes("sagaflow.events"),
                       amqp_cstring_bytes("order.cancelled"), 0, 0, &p,
                       amqp_bytes_t{body.size(), const_cast<char*>(body.data())});
  }
  sagaflow::bench::bare_close(conn);
  const auto give_up = Clock::now() + 120s;
  while (c.rabbit.queue_depth("sagaflow.deliveries") < static_cast<std::uint32_t>(n)) {
    if (Clock::now() > give_up) throw std::runtime_error("backlog never reached the queue");
    std::this_thread::sleep_for(20ms);
  }
}

bool queue_exists(const sagaflow::AmqpEndpoint& ep, const char* name) {
  amqp_connection_state_t conn = sagaflow::bench::bare_connect(ep);
  amqp_queue_declare(conn, 1, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
  const bool ok = amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL;
  if (ok) {
    sagaflow::bench::bare_close(conn);
  } else {
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
  }
  return ok;
}

std::unique_ptr<Process> start_deliver(Cluster& c, const std::string& level) {
  Env env = c.env;
  env.emplace_back("SAGAFLOW_LOG_LEVEL", level);
  return std::make_unique<Process>(std::vector<std::string>{c.bin, "deliver"}, env, false);
}

void stop_deliver(std::unique_ptr<Process>& p) {
  p->signal(SIGTERM);
  if (!p->wait_for(20s)) std::printf("  (deliver did not exit within 20 s of SIGTERM)\n");
  p.reset();  // SIGKILL to its group if still running
}

std::string add_endpoint(Cluster& c, int port) {
  Env env = c.env;
  env.emplace_back("SAGAFLOW_LOG_LEVEL", "warn");
  Process p({c.bin, "endpoints", "add", "--url", "http://127.0.0.1:" + std::to_string(port) + "/x",
             "--events", "*"},
            env);
  if (p.wait_for(30s).value_or(-1) != 0)
    throw std::runtime_error("endpoints add failed: " + p.read_stderr());
  const std::string out = p.read_stdout();
  return out.substr(0, out.find(' '));
}

// The backlog of n events is in sagaflow.deliveries; one deliver drains it. Timed on `fast`
// from its first request to its n-th.
Figures ours_round(Cluster& c, Receiver& fast, int n, const std::string& prefix) {
  publish_backlog(c, n, prefix);
  fast.reset();
  auto proc = start_deliver(c, "warn");
  const pid_t pid = proc->pid();
  const auto give_up = Clock::now() + 300s;
  while (fast.count() == 0 && Clock::now() < give_up) std::this_thread::sleep_for(200us);
  const double d0 = sagaflow::bench::process_cpu(pid),
               r0 = sagaflow::bench::process_cpu(c.redis.pid()),
               q0 = sagaflow::bench::process_cpu(c.rabbit.pid()), x0 = fast.cpu();
  while (fast.count() < static_cast<std::size_t>(n) && Clock::now() < give_up)
    std::this_thread::sleep_for(200us);
  Figures f;
  const double k = 1000.0 / n;
  f.deliver_cpu = (sagaflow::bench::process_cpu(pid) - d0) * k;
  f.redis_cpu = (sagaflow::bench::process_cpu(c.redis.pid()) - r0) * k;
  f.rabbit_cpu = (sagaflow::bench::process_cpu(c.rabbit.pid()) - q0) * k;
  f.receiver_cpu = (fast.cpu() - x0) * k;
  const std::size_t got = fast.count();
  const double secs = fast.span(static_cast<std::size_t>(n));
  f.rate = secs > 0 ? (n - 1) / secs : 0;
  if (got < static_cast<std::size_t>(n))
    std::printf("  (only %zu of %d deliveries arrived)\n", got, n);
  stop_deliver(proc);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int rounds = std::max(2, argc > 2 ? std::atoi(argv[2]) : 2);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const char* b = std::getenv("SAGAFLOW_BINARY");
  std::fprintf(stderr, "starting redis-server and rabbitmq-server...\n");
  RedisServer redis;
  RabbitServer rabbit;
  auto amqp = sagaflow::parse_amqp_url(rabbit.amqp_url());
  if (!amqp) return 1;
  Cluster c{redis,
            rabbit,
            *amqp,
            b ? b : "./app/sagaflow",
            {{"SAGAFLOW_AMQP_URL", rabbit.amqp_url()},
             {"SAGAFLOW_REDIS_URL", redis.url()},
             {"SAGAFLOW_METRICS_ADDR", "0"},
             {"SAGAFLOW_DELIVERY_ALLOW_PRIVATE", "1"},
             {"SAGAFLOW_DELIVERY_TIMEOUT_MS", "30000"}}};
  {
    Env env = c.env;
    env.emplace_back("SAGAFLOW_LOG_LEVEL", "warn");
    Process topo({c.bin, "topology", "apply"}, env);
    if (topo.wait_for(60s).value_or(-1) != 0) {
      std::fprintf(stderr, "topology apply failed: %s\n", topo.read_stderr().c_str());
      return 1;
    }
  }
  Receiver fast;
  const std::string fast_id = add_endpoint(c, fast.port());
  // deliver declares sagaflow.deliveries (bound with "#") at start: once, so the backlog of each
  // round can be queued before the timed deliver starts.
  {
    auto p = start_deliver(c, "info");
    const auto give_up = Clock::now() + 60s;
    while (Clock::now() < give_up &&
           (p->read_stderr().find("endpoints loaded") == std::string::npos ||
            !queue_exists(c.amqp, "sagaflow.deliveries")))
      std::this_thread::sleep_for(50ms);
    if (Clock::now() >= give_up) {
      std::fprintf(stderr, "deliver did not come up: %s\n", p->read_stderr().c_str());
      return 1;
    }
    stop_deliver(p);
  }
  std::printf(
      "deliver_bench: %d deliveries of ~400-byte events per round, %d rounds; endpoint "
      "%s at 127.0.0.1:%d (epoll receiver)\n",
      n, rounds, fast_id.c_str(), fast.port());
  std::printf(
      "CPU columns: seconds per 1,000 deliveries over the timed span; sender = the bare "
      "curl loop or the deliver process\n");
  std::printf("%-6s %-5s %12s %10s %10s %10s %10s\n", "round", "path", "deliveries/s", "sender",
              "redis", "rabbitmq", "receiver");
  double best_bare = 0, best_ours = 0, last_ours = 0;
  for (int r = 1; r <= rounds; ++r) {
    const Figures fb = bare_round(fast, n, r);
    best_bare = std::max(best_bare, fb.rate);
    std::printf("%-6d %-5s %12.0f %10.3f %10s %10s %10.3f\n", r, "bare", fb.rate, fb.client_cpu,
                "-", "-", fb.receiver_cpu);
    std::fflush(stdout);
    const Figures fo = ours_round(c, fast, n, "evt_" + std::to_string(r) + "_");
    best_ours = std::max(best_ours, fo.rate);
    last_ours = fo.rate;
    std::printf("%-6d %-5s %12.0f %10.3f %10.3f %10.3f %10.3f\n", r, "ours", fo.rate,
                fo.deliver_cpu, fo.redis_cpu, fo.rabbit_cpu, fo.receiver_cpu);
    std::fflush(stdout);
  }
  const double ratio = best_bare > 0 ? best_ours / best_bare : 0;
  std::printf("best ours %.0f/s / best bare %.0f/s = %.2f (target >= 0.80 and >= 5,000/s): %s\n",
              best_ours, best_bare, ratio, ratio >= 0.8 && best_ours >= 5000 ? "met" : "NOT met");

  // Isolation: a second endpoint that never answers.
  Receiver hang(true);
  const std::string hang_id = add_endpoint(c, hang.port());
  const Figures fi = ours_round(c, fast, n, "iso_");
  std::printf("%-6s %-5s %12.0f %10.3f %10.3f %10.3f %10.3f\n", "iso", "ours", fi.rate,
              fi.deliver_cpu, fi.redis_cpu, fi.rabbit_cpu, fi.receiver_cpu);
  const double iso = last_ours > 0 ? fi.rate / last_ours : 0;
  std::printf(
      "isolation: fast endpoint %.0f/s while %s hangs (%zu requests held open on %zu "
      "connections) vs %.0f/s alone (round %d) = %.2f (target >= 0.90): %s\n",
      fi.rate, hang_id.c_str(), hang.count(), hang.connections(), last_ours, rounds, iso,
      iso >= 0.9 ? "met" : "NOT met");
  curl_global_cleanup();
  return 0;
}
