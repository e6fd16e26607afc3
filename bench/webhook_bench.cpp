// Webhook ingress benchmark (issue 12), side by side in one run on the same rabbitmq-server:
//
//   bare: a blocking rabbitmq-c loop publishing the same envelopes to sagaflow.events
//         (persistent, publisher confirms) with 50 unconfirmed at most: the broker's limit for
//         50 senders that each wait for their confirm.
//   ours: `sagaflow webhook` (one process) and 50 keep-alive HTTP clients on raw sockets in
//         this process, each sending one signed POST, waiting for its 202 (sent only after the
//         broker's confirm), then the next.
// Rounds alternate bare / ours; the best of each is reported with the ratio (target >= 0.8).
// Then ours at half its best rate, open loop (requests scheduled evenly, latency counted from
// the scheduled time, so queueing in the client counts too): p50 / p99 of the 202 (target
// p99 < 10 ms). CPU seconds of the ingress and of RabbitMQ are read from /proc over each
// timed span.
//
// Usage: webhook_bench [N=20000] [rounds=2]. Starts its own rabbitmq-server on a free loopback
// port (tests/support) and the sagaflow binary of the build (SAGAFLOW_BINARY or the default).
#include <amqp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "http/webhook_signature.hpp"
#include "support/raw_http.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kClients = 50;
constexpr const char* kSecret = "bench-secret";

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string envelope(int round, int i) {
  const std::string id = "wh_" + std::to_string(round) + "_" + std::to_string(i);
  std::string body = R"({"id":")" + id + R"(","type":"order.cancelled","store_id":"store_1",)" +
                     R"("data":{"order_id":"ord_)" + id + R"(","reason":"customer","pad":")";
  body.append(400 > body.size() + 4 ? 400 - body.size() - 4 : 0, 'x');
  return body + "\"}}";
}

struct RoundResult {
  double rate = 0;
  double ingress_cpu = 0;  // seconds per 1,000 events
  double rabbit_cpu = 0;
};

// rate <= 0: as fast as the window allows; rate > 0: open loop at that rate, with each
// confirm's latency (from the scheduled send time) appended to *latency_ms.
RoundResult bare_publish(const AmqpEndpoint& ep, pid_t rabbit, int n, int round, double rate = 0,
                         std::vector<double>* latency_ms = nullptr) {
  amqp_connection_state_t c = bench::bare_connect(ep);
  bench::select_confirms(c);
  amqp_basic_properties_t p = bench::persistent_json();
  std::vector<std::string> bodies;
  for (int i = 0; i < n; ++i) bodies.push_back(envelope(round, i));
  const double rabbit0 = bench::process_cpu(rabbit);
  const auto t0 = Clock::now();
  std::uint64_t sent = 0, confirmed = 0;
  std::string id;
  const auto scheduled = [&](std::uint64_t i) {
    return t0 + std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double>(static_cast<double>(i) / rate));
  };
  std::vector<Clock::time_point> sent_at(static_cast<std::size_t>(n));
  while (confirmed < static_cast<std::uint64_t>(n)) {
    while (sent < static_cast<std::uint64_t>(n) && sent - confirmed < kClients &&
           (rate <= 0 || scheduled(sent) <= Clock::now())) {
      sent_at[sent] = rate > 0 ? scheduled(sent) : Clock::now();
      id = "wh_" + std::to_string(sent);
      p.message_id = amqp_bytes_t{id.size(), id.data()};
      const std::string& b = bodies[sent];
      amqp_basic_publish(c, 1, amqp_cstring_bytes("sagaflow.events"),
                         amqp_cstring_bytes("order.cancelled"), 0, 0, &p,
                         amqp_bytes_t{b.size(), const_cast<char*>(b.data())});
      sent++;
    }
    amqp_frame_t f;
    timeval wait{0, 1000};  // 1 ms: the open loop's send schedule
    const int rc = rate > 0 && sent < static_cast<std::uint64_t>(n)
                       ? amqp_simple_wait_frame_noblock(c, &f, &wait)
                       : amqp_simple_wait_frame(c, &f);
    if (rc == AMQP_STATUS_TIMEOUT) continue;
    if (rc != AMQP_STATUS_OK) throw std::runtime_error("bare: read failed");
    if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      const auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
      const std::uint64_t upto =
          a->multiple != 0 ? a->delivery_tag : std::max<std::uint64_t>(confirmed, a->delivery_tag);
      if (latency_ms != nullptr) {
        const auto now = Clock::now();
        for (std::uint64_t tag = confirmed + 1; tag <= upto; ++tag)  // tags start at 1
          latency_ms->push_back(
              std::chrono::duration<double, std::milli>(now - sent_at[tag - 1]).count());
      }
      confirmed = upto;
    }
    amqp_maybe_release_buffers(c);
  }
  RoundResult r;
  const double secs = since(t0);
  r.rate = n / secs;
  r.rabbit_cpu = (bench::process_cpu(rabbit) - rabbit0) * 1000.0 / n;
  bench::bare_close(c);
  return r;
}

// 50 keep-alive connections on one epoll. rate <= 0: closed loop (each client sends its next
// request on its 202); rate > 0: open loop at that rate, latency from the scheduled time.
struct HttpLoad {
  int n = 0;
  double rate = 0;
  std::vector<double> latency_ms;
  int accepted = 0;
  int other = 0;
  double seconds = 0;
};

void run_http(int port, int round, HttpLoad& load) {
  const auto now_s = static_cast<std::int64_t>(std::time(nullptr));
  std::vector<std::string> requests;
  requests.reserve(static_cast<std::size_t>(load.n));
  for (int i = 0; i < load.n; ++i) {
    const std::string body = envelope(round, i);
    requests.push_back(
        "POST /webhooks/bench HTTP/1.1\r\nHost: b\r\nContent-Type: "
        "application/json\r\nX-Sagaflow-Signature: " +
        http::sign(kSecret, now_s, body) + "\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body);
  }
  struct Conn {
    int fd = -1;
    bool busy = false;
    Clock::time_point started;
    std::string in;
  };
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(kClients);
  for (int i = 0; i < kClients; ++i) {
    conns[i].fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(conns[i].fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("connect to the ingress failed");
    const int one = 1;
    ::setsockopt(conns[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  std::deque<int> idle;
  for (int i = 0; i < kClients; ++i) idle.push_back(i);
  int next = 0, done = 0;
  const auto t0 = Clock::now();
  const auto scheduled = [&](int i) {
    return load.rate > 0 ? t0 + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(i / load.rate))
                         : Clock::now();
  };
  while (done < load.n) {
    // Send what is due on idle connections.
    while (next < load.n && !idle.empty() && (load.rate <= 0 || scheduled(next) <= Clock::now())) {
      Conn& c = conns[static_cast<std::size_t>(idle.front())];
      idle.pop_front();
      c.busy = true;
      c.started = load.rate > 0 ? scheduled(next) : Clock::now();
      const std::string& r = requests[static_cast<std::size_t>(next++)];
      if (::send(c.fd, r.data(), r.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(r.size()))
        throw std::runtime_error("send failed");
    }
    int wait_ms = 100;
    if (load.rate > 0 && next < load.n && !idle.empty()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(scheduled(next) - Clock::now());
      wait_ms = static_cast<int>(std::max<std::int64_t>(0, left.count()));
    }
    epoll_event events[64];
    const int k = ::epoll_wait(ep, events, 64, wait_ms);
    for (int e = 0; e < k; ++e) {
      Conn& c = conns[events[e].data.u32];
      char buf[4096];
      const ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
      if (got <= 0)
        throw std::runtime_error("the ingress closed a connection after " + std::to_string(done) +
                                 " answers; unread: " + c.in.substr(0, 300));
      c.in.append(buf, static_cast<std::size_t>(got));
      // Answers are small: head + JSON body with Content-Length.
      for (;;) {
        const auto head_end = c.in.find("\r\n\r\n");
        if (head_end == std::string::npos) break;
        const auto cl = c.in.find("Content-Length: ");
        if (cl == std::string::npos || cl > head_end) throw std::runtime_error("bad answer");
        const std::size_t len = std::stoul(c.in.substr(cl + 16));
        if (c.in.size() < head_end + 4 + len) break;
        const int status = std::atoi(c.in.substr(9, 3).c_str());
        c.in.erase(0, head_end + 4 + len);
        (status == 202 ? load.accepted : load.other)++;
        load.latency_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - c.started).count());
        c.busy = false;
        ++done;
        idle.push_back(static_cast<int>(events[e].data.u32));
      }
    }
  }
  load.seconds = since(t0);
  for (auto& c : conns) ::close(c.fd);
  ::close(ep);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 2;
  log::set_level(log::Level::warn);
  std::fprintf(stderr, "starting rabbitmq-server...\n");
  testing::RabbitServer rabbit;
  auto ep = parse_amqp_url(rabbit.amqp_url());
  if (!ep) return 1;
  const int port = testing::free_port();
  const std::vector<std::pair<std::string, std::string>> env = {
      {"SAGAFLOW_AMQP_URL", rabbit.amqp_url()},
      {"SAGAFLOW_WEBHOOK_SECRET", kSecret},
      {"SAGAFLOW_WEBHOOK_ADDR", "127.0.0.1:" + std::to_string(port)},
      {"SAGAFLOW_METRICS_ADDR", "0"},
      {"SAGAFLOW_LOG_LEVEL", std::getenv("BENCH_LOG") ? std::getenv("BENCH_LOG") : "warn"}};
  {
    testing::Process topo({testing::sagaflow_binary(), "topology", "apply"}, env);
    if (topo.wait_for(std::chrono::seconds(60)) != 0) {
      std::fprintf(stderr, "webhook_bench: topology apply failed\n");
      return 1;
    }
  }
  testing::Process ingress({testing::sagaflow_binary(), "webhook"}, env);
  bool ready = false;
  for (int i = 0; i < 150 && !ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    testing::RawConn probe(port);
    ready = probe.send(testing::raw_get("/readyz")) &&
            probe.read_answer(std::chrono::seconds(2)).status == 200;
  }
  if (!ready) {
    std::fprintf(stderr, "webhook_bench: the ingress did not become ready\n");
    return 1;
  }
  std::printf("webhook_bench: %d signed webhooks of ~400 bytes per round, %d keep-alive clients\n",
              n, kClients);

  RoundResult best_bare, best_ours;
  for (int round = 0; round < rounds; ++round) {
    for (int k = 0; k < 2; ++k) {
      const bool bare = (k == 0) == (round % 2 == 0);
      rabbit.purge("sagaflow.saga");
      RoundResult r;
      if (bare) {
        r = bare_publish(ep.value(), rabbit.pid(), n, round);
      } else {
        HttpLoad load;
        load.n = n;
        const double ing0 = bench::process_cpu(ingress.pid());
        const double rab0 = bench::process_cpu(rabbit.pid());
        try {
          run_http(port, round, load);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "webhook_bench: %s\n%s\n", e.what(), ingress.read_stderr().c_str());
          return 1;
        }
        r.rate = load.accepted / load.seconds;
        r.ingress_cpu = (bench::process_cpu(ingress.pid()) - ing0) * 1000.0 / n;
        r.rabbit_cpu = (bench::process_cpu(rabbit.pid()) - rab0) * 1000.0 / n;
        if (load.other != 0) std::printf("  (%d answers were not 202)\n", load.other);
      }
      std::printf("  round %d %-4s %8.0f events/s   CPU per 1k: ingress %.3f s, rabbitmq %.3f s\n",
                  round + 1, bare ? "bare" : "ours", r.rate, r.ingress_cpu, r.rabbit_cpu);
      RoundResult& best = bare ? best_bare : best_ours;
      if (r.rate > best.rate) best = r;
    }
  }
  std::printf("accepted (202 after confirm): bare publish %.0f/s, ingress %.0f/s, ours/bare %.2f\n",
              best_bare.rate, best_ours.rate, best_ours.rate / best_bare.rate);

  HttpLoad half;
  half.n = n;
  half.rate = best_ours.rate / 2;
  rabbit.purge("sagaflow.saga");
  run_http(port, rounds, half);
  const double p50 = bench::percentile(half.latency_ms, 0.50);
  const double p99 = bench::percentile(half.latency_ms, 0.99);
  std::printf("latency at %.0f/s (half): p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d of %d 202)\n",
              half.rate, p50, p99, half.latency_ms.empty() ? 0 : half.latency_ms.back(),
              half.accepted, n);
  std::vector<double> bare_latency;
  rabbit.purge("sagaflow.saga");
  bare_publish(ep.value(), rabbit.pid(), n, rounds + 1, half.rate, &bare_latency);
  const double b50 = bench::percentile(bare_latency, 0.50);
  const double b99 = bench::percentile(bare_latency, 0.99);
  std::printf("bare publish at the same rate: p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", b50, b99,
              bare_latency.empty() ? 0 : bare_latency.back());
  ingress.signal(SIGTERM);
  ingress.wait_for(std::chrono::seconds(10));
  rabbit.purge("sagaflow.saga");
  return 0;
}
