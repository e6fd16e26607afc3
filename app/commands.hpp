#pragma once
// The subcommands of CONTRACT.md section 1. Each returns the process exit code:
// 0 success, 1 runtime failure, 2 bad usage. main.cpp parses the command line and the
// configuration once and calls one of these; they print errors as one line on stderr.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"

namespace sagaflow::app {

struct PublishArgs {
  std::string file;  // "-" = stdin; empty when --generate is used
  std::optional<std::int64_t> generate;
  double rate = 0;  // events per second, 0 = as fast as confirms allow
  int stores = 10;
  std::uint64_t seed = 1;
  bool raw = false;                     // --raw: lines sent unvalidated (poison drills)
  std::string route = "order.created";  // --route, with --raw
};

struct SimulateArgs {
  std::uint64_t seed = 1;
  double fail_inventory = 0.05;
  double fail_payment = 0.05;
  double fail_shipment = 0.02;
  double no_answer = 0.0;  // share of commands never answered (drives timeouts)
  int latency_ms = 0;
};

struct DlqArgs {
  std::int64_t limit = 100;
  bool from_index = false;  // list --index: the console's dead-letter index in Redis
  std::string reason;       // list --index --reason R
};

struct EndpointsArgs {
  std::string action;                            // add, list, show, disable, enable, rotate, remove
  std::string id;                                // show ... remove
  std::string url, events, secret, store, plan;  // add
  bool json = false;                             // list, show
};

struct DeliveriesArgs {
  std::string action;    // list, show, replay
  std::string event_id;  // show
  std::string endpoint;  // --endpoint
  bool failed = false;   // list --failed
  bool dead = false;     // list / replay --dead
  std::string since;     // replay --since RFC3339
  std::int64_t limit = 1000;
  bool json = false;
};

int run_worker(const Config& config);
int run_deliver(const Config& config);
int run_endpoints(const Config& config, const EndpointsArgs& args);
int run_deliveries(const Config& config, const DeliveriesArgs& args);
int run_topology_apply(const Config& config);
int run_publish(const Config& config, const PublishArgs& args);
int run_simulate(const Config& config, const SimulateArgs& args);
int run_saga_show(const Config& config, const std::string& order_id);
int run_status(const Config& config, bool json);
int run_dlq_list(const Config& config, const DlqArgs& args);
int run_dlq_replay(const Config& config, const DlqArgs& args);
int run_webhook(const Config& config);
int run_kafka_mock(const Config& config);
int run_console(const Config& config);

// Redis key counting saga starts delayed by a rate limit (once per order), cluster-wide.
inline constexpr std::string_view kRateLimitedKey = "sagaflow:stats:rate_limited";

}  // namespace sagaflow::app
