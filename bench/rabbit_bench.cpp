// RabbitMQ path benchmark (issue 3), side by side in one run on this machine:
//
//  publish: persistent messages with publisher confirms, at most W unconfirmed.
//    bare: a blocking rabbitmq-c loop (publish until W outstanding, then read acks).
//    ours: RabbitSink on a libuv loop (the same window).
//  consume: a pre-filled durable queue drained with manual acks, prefetch P.
//    bare: a blocking rabbitmq-c loop (amqp_consume_message + basic.ack per message).
//    ours: RabbitSource on a libuv loop (the handler settles ack at once).
//
// Each is run twice, alternating bare / ours, and the better run of each is reported with the
// ratio ours / bare (target >= 90 %).
//
// Usage: rabbit_bench [N=50000] [body bytes=256]. Uses SAGAFLOW_AMQP_URL if set, else starts
// its own rabbitmq-server on a free loopback port (tests/support).
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "bench_util.hpp"
#include "consumers/rabbit_source.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "producers/rabbit_sink.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using Clock = std::chrono::steady_clock;
using bench::bare_close;
using bench::bare_connect;

namespace {

constexpr const char* kQueue = "sagaflow.bench";
constexpr std::size_t kWindow = 1024;
constexpr int kPrefetch = 256;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::uint32_t prepare_queue(const AmqpEndpoint& ep, bool purge) {
  amqp_connection_state_t c = bare_connect(ep);
  auto* ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(kQueue), 0, 1, 0, 0, amqp_empty_table);
  if (ok == nullptr) throw std::runtime_error("queue.declare failed");
  std::uint32_t depth = ok->message_count;
  if (purge) {
    amqp_queue_purge(c, 1, amqp_cstring_bytes(kQueue));
    depth = 0;
  }
  bare_close(c);
  return depth;
}

// Bare publish with confirms, a window of kWindow unconfirmed messages.
double bare_publish(const AmqpEndpoint& ep, int n, const std::string& body) {
  amqp_connection_state_t c = bare_connect(ep);
  bench::select_confirms(c);
  amqp_basic_properties_t p = bench::persistent_json();
  const auto t0 = Clock::now();
  std::uint64_t sent = 0, confirmed = 0;
  std::string id;
  while (confirmed < static_cast<std::uint64_t>(n)) {
    while (sent < static_cast<std::uint64_t>(n) && sent - confirmed < kWindow) {
      id = "m" + std::to_string(sent);
      p.message_id = amqp_bytes_t{id.size(), id.data()};
      amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(kQueue), 0, 0, &p,
                         amqp_bytes_t{body.size(), const_cast<char*>(body.data())});
      sent++;
    }
    amqp_frame_t f;
    if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
      throw std::runtime_error("bare: read failed");
    if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      const auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
      confirmed =
          a->multiple != 0 ? a->delivery_tag : std::max<std::uint64_t>(confirmed, a->delivery_tag);
    }
    amqp_maybe_release_buffers(c);
  }
  const double secs = since(t0);
  bare_close(c);
  return n / secs;
}

double ours_publish(const AmqpEndpoint& ep, int n, const std::string& body) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  double rate = 0;
  {
    RabbitSinkOptions o;
    o.endpoint = ep;
    o.window = kWindow;
    RabbitSink sink(&loop, o);
    int sent = 0, ok = 0;
    Clock::time_point t0;
    auto feed = [&] {
      while (sent < n && sink.can_publish()) {
        Message m;
        m.routing_key = kQueue;
        m.message_id = "m" + std::to_string(sent);
        m.body = body;
        sent++;
        sink.publish(std::move(m), [&](Status s) {
          if (!s) {
            std::fprintf(stderr, "ours: publish failed: %s\n", s.error().detail.c_str());
            std::abort();
          }
          if (++ok == n) {
            rate = n / since(t0);
            sink.stop([] {});
          }
        });
      }
    };
    sink.on_state_change([&](bool up) {
      if (up && sent == 0) {
        t0 = Clock::now();
        feed();
      }
    });
    sink.on_writable(feed);
    sink.start();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rate;
}

double bare_consume(const AmqpEndpoint& ep, int n) {
  amqp_connection_state_t c = bare_connect(ep);
  amqp_basic_qos(c, 1, 0, kPrefetch, 0);
  amqp_basic_consume(c, 1, amqp_cstring_bytes(kQueue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  amqp_get_rpc_reply(c);
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    amqp_envelope_t env;
    amqp_maybe_release_buffers(c);
    const amqp_rpc_reply_t r = amqp_consume_message(c, &env, nullptr, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) throw std::runtime_error("bare: consume failed");
    amqp_basic_ack(c, 1, env.delivery_tag, 0);
    amqp_destroy_envelope(&env);
  }
  const double secs = since(t0);
  bare_close(c);
  return n / secs;
}

double ours_consume(const AmqpEndpoint& ep, int n) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  double rate = 0;
  {
    RabbitSourceOptions o;
    o.endpoint = ep;
    o.queue = kQueue;
    o.prefetch = kPrefetch;
    RabbitSinkOptions so;  // the copies' sink, wired as app/impl/brokers.cpp does
    so.endpoint = ep;
    RabbitSink copies(&loop, so);
    copies.start();
    RabbitSource source(&loop, o, copies);
    int got = 0;
    Clock::time_point t0;
    source.on_state_change([&](bool up) {
      if (up && got == 0) t0 = Clock::now();
    });
    source.start([&](const Delivery& d) {
      source.settle(d.tag, Verdict::ack());
      if (++got == n) {
        rate = n / since(t0);
        source.stop([&copies] { copies.stop(); });
      }
    });
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rate;
}

void report(const char* what, double bare, double ours) {
  std::printf("%-8s bare %9.0f msg/s   ours %9.0f msg/s   ours/bare %5.1f %%\n", what, bare, ours,
              100.0 * ours / bare);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 50000;
  const std::size_t body_bytes = argc > 2 ? static_cast<std::size_t>(std::atoi(argv[2])) : 256;
  log::set_level(log::Level::warn);
  std::unique_ptr<testing::RabbitServer> server;
  std::string url;
  if (const char* env = std::getenv("SAGAFLOW_AMQP_URL"); env != nullptr && *env != '\0') {
    url = env;
  } else {
    std::fprintf(stderr, "starting rabbitmq-server...\n");
    server = std::make_unique<testing::RabbitServer>();
    url = server->amqp_url();
  }
  auto ep = parse_amqp_url(url);
  if (!ep) {
    std::fprintf(stderr, "rabbit_bench: %s\n", ep.error().detail.c_str());
    return 1;
  }
  std::string body = R"({"id":"evt_bench","type":"order.created","pad":")";
  body.append(body_bytes > body.size() + 2 ? body_bytes - body.size() - 2 : 0, 'x');
  body += "\"}";
  std::printf("rabbit_bench: %d messages of %zu bytes, window %zu, prefetch %d, %s\n", n,
              body.size(), kWindow, kPrefetch, url.c_str());

  double pub_bare = 0, pub_ours = 0, con_bare = 0, con_ours = 0;
  for (int round = 0; round < 2; ++round) {
    const bool bare_first = round == 0;
    for (int k = 0; k < 2; ++k) {
      const bool bare = (k == 0) == bare_first;
      // publish into an empty queue, then drain what was published with the same flavour
      prepare_queue(ep.value(), true);
      const double p = bare ? bare_publish(ep.value(), n, body) : ours_publish(ep.value(), n, body);
      const double c = bare ? bare_consume(ep.value(), n) : ours_consume(ep.value(), n);
      (bare ? pub_bare : pub_ours) = std::max(bare ? pub_bare : pub_ours, p);
      (bare ? con_bare : con_ours) = std::max(bare ? con_bare : con_ours, c);
      std::printf("  round %d %-4s publish %9.0f msg/s   consume %9.0f msg/s\n", round + 1,
                  bare ? "bare" : "ours", p, c);
    }
  }
  report("publish", pub_bare, pub_ours);
  report("consume", con_bare, con_ours);
  prepare_queue(ep.value(), true);
  return 0;
}
