// sagaflow: one binary, one subcommand per job (CONTRACT.md section 1).
#include <sys/resource.h>

#include <cstdio>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "app/commands.hpp"
#include "core/config.hpp"
#include "core/log.hpp"

#ifndef SAGAFLOW_VERSION
#define SAGAFLOW_VERSION "0.0.0"
#endif

namespace {

using sagaflow::Config;

// One-line error on stderr, CONTRACT.md section 1.
void print_error(const std::string& what) {
  std::fprintf(stderr, "sagaflow: %s\n", what.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  namespace app = sagaflow::app;
  // An HTTP listener holds up to SAGAFLOW_HTTP_MAX_CONNECTIONS sockets: allow what the hard
  // limit allows, so that the connection cap, not EMFILE, is what refuses a flood.
  if (rlimit fds{}; ::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &fds);
  }
  CLI::App cli{"sagaflow: saga orchestration for order events on RabbitMQ or Kafka, with Redis"};
  cli.set_version_flag("--version", std::string("sagaflow ") + SAGAFLOW_VERSION);
  cli.require_subcommand(1);
  cli.fallthrough();  // configuration flags are accepted after the subcommand too

  // Configuration flags, one per key of CONTRACT.md section 1; flags win over environment
  // and --config FILE.
  sagaflow::ConfigSources sources;
  std::map<std::string, std::string> flag_values;
  for (const auto& key : sagaflow::config_keys()) {
    cli.add_option(fmt::format("--{}", key.flag), flag_values[std::string(key.env)],
                   fmt::format("{} (env {}{}{})", key.help, key.env,
                               key.default_value.empty() ? "" : ", default ", key.default_value))
        ->group("Configuration");
  }
  cli.add_option("--config", sources.config_file, "KEY=VALUE file (lower precedence than env)")
      ->group("Configuration");

  auto* worker =
      cli.add_subcommand("worker", "consume events, run sagas, ack / retry / dead-letter");
  auto* topology = cli.add_subcommand("topology", "broker topology");
  topology->require_subcommand(1);
  auto* topology_apply = topology->add_subcommand(
      "apply", "declare exchanges, queues, bindings or topics (idempotent)");

  app::PublishArgs publish_args;
  std::int64_t generate = 0;
  auto* publish = cli.add_subcommand(
      "publish", "publish events from a JSON-lines file or synthetic order.created");
  auto* file_opt = publish->add_option("--file", publish_args.file, "JSON lines file, - for stdin");
  auto* gen_opt =
      publish->add_option("--generate", generate, "generate N synthetic order.created events")
          ->check(CLI::PositiveNumber);
  file_opt->excludes(gen_opt);
  publish->add_option("--rate", publish_args.rate, "events per second (0 = unlimited)")
      ->check(CLI::NonNegativeNumber);
  publish->add_option("--stores", publish_args.stores, "number of distinct stores")
      ->check(CLI::PositiveNumber);
  publish->add_option("--seed", publish_args.seed, "random seed");
  auto* raw_opt = publish->add_flag("--raw", publish_args.raw,
                                    "with --file: send lines unvalidated (poison drills)");
  publish->add_option("--route", publish_args.route, "with --raw: the routing key")->needs(raw_opt);
  raw_opt->needs(file_opt);

  app::SimulateArgs sim;
  auto* simulate =
      cli.add_subcommand("simulate", "participant simulator: inventory, payment, shipment");
  simulate->add_option("--seed", sim.seed, "random seed (same seed, same answers)");
  simulate
      ->add_option("--fail-inventory", sim.fail_inventory, "share of inventory.reserve rejected")
      ->check(CLI::Range(0.0, 1.0));
  simulate->add_option("--fail-payment", sim.fail_payment, "share of payment.charge failed")
      ->check(CLI::Range(0.0, 1.0));
  simulate->add_option("--fail-shipment", sim.fail_shipment, "share of shipment.create failed")
      ->check(CLI::Range(0.0, 1.0));
  simulate->add_option("--no-answer", sim.no_answer, "share of commands never answered")
      ->check(CLI::Range(0.0, 1.0));
  simulate->add_option("--latency-ms", sim.latency_ms, "delay before each answer")
      ->check(CLI::NonNegativeNumber);

  auto* saga = cli.add_subcommand("saga", "inspect sagas");
  saga->require_subcommand(1);
  std::string order_id;
  auto* saga_show = saga->add_subcommand("show", "print one saga's state as JSON");
  saga_show->add_option("ORDER_ID", order_id, "the order id")->required();

  auto* status = cli.add_subcommand("status", "cluster-wide summary");
  bool status_json = false;
  status->add_flag("--json", status_json, "one JSON object instead of a table");

  app::DlqArgs dlq_args;
  auto* dlq = cli.add_subcommand("dlq", "the dead-letter queue");
  dlq->require_subcommand(1);
  auto* dlq_list = dlq->add_subcommand("list", "list dead-lettered messages with their reasons");
  dlq_list->add_option("--limit", dlq_args.limit, "at most this many")->check(CLI::PositiveNumber);
  auto* dlq_index = dlq_list->add_flag(
      "--index", dlq_args.from_index,
      "read the dead-letter index in Redis (newest first, filterable) instead of the broker");
  dlq_list->add_option("--reason", dlq_args.reason, "with --index: only this reason")
      ->needs(dlq_index);
  auto* dlq_replay =
      dlq->add_subcommand("replay", "re-publish dead-lettered events to their original route");
  dlq_replay->add_option("--limit", dlq_args.limit, "at most this many")
      ->check(CLI::PositiveNumber);

  auto* webhook = cli.add_subcommand("webhook", "HTTP ingress for signed webhooks");
  auto* deliver = cli.add_subcommand("deliver", "outgoing webhooks: POST events to endpoints");

  app::EndpointsArgs ep_args;
  auto* endpoints = cli.add_subcommand("endpoints", "manage outgoing webhook endpoints");
  endpoints->require_subcommand(1);
  auto* ep_add = endpoints->add_subcommand("add", "register an endpoint; prints <id> <secret>");
  ep_add->add_option("--url", ep_args.url, "http:// or https:// URL")->required();
  ep_add->add_option("--events", ep_args.events, "event patterns: type, prefix.* or *")->required();
  ep_add->add_option("--secret", ep_args.secret, "signing secret (default: a new whsec_ one)");
  ep_add->add_option("--store", ep_args.store, "only events of this store_id");
  ep_add->add_option("--plan", ep_args.plan, "rate-limit plan of SAGAFLOW_PLANS (default: none)");
  auto* ep_list = endpoints->add_subcommand("list", "one line per endpoint");
  ep_list->add_flag("--json", ep_args.json, "a JSON array");
  for (const char* action : {"show", "disable", "enable", "rotate", "remove"}) {
    auto* sub = endpoints->add_subcommand(action, std::string(action) + " one endpoint");
    sub->add_option("ID", ep_args.id, "the endpoint id")->required();
    if (std::string_view(action) == "show")
      sub->add_flag("--json", ep_args.json, "one JSON object");
  }

  app::DeliveriesArgs dl_args;
  auto* deliveries = cli.add_subcommand("deliveries", "the outgoing webhooks' attempts log");
  deliveries->require_subcommand(1);
  auto* dl_list = deliveries->add_subcommand("list", "one line per delivery, newest first");
  dl_list->add_option("--endpoint", dl_args.endpoint, "only this endpoint's");
  auto* dl_failed = dl_list->add_flag("--failed", dl_args.failed, "pending after a failed attempt");
  auto* dl_dead = dl_list->add_flag("--dead", dl_args.dead, "dead after the last attempt");
  dl_failed->excludes(dl_dead);
  dl_list->add_option("--limit", dl_args.limit, "at most this many")->check(CLI::PositiveNumber);
  dl_list->add_flag("--json", dl_args.json, "a JSON array");
  auto* dl_show = deliveries->add_subcommand("show", "one event's attempts per endpoint");
  dl_show->add_option("EVENT_ID", dl_args.event_id, "the event id")->required();
  dl_show->add_flag("--json", dl_args.json, "a JSON array");
  auto* dl_replay = deliveries->add_subcommand("replay", "deliver again (same webhook-id)");
  dl_replay->add_option("--endpoint", dl_args.endpoint, "the endpoint")->required();
  dl_replay->add_option("--since", dl_args.since, "only events since this RFC 3339 time");
  dl_replay->add_flag("--dead", dl_args.dead, "only dead deliveries");
  dl_replay->add_option("--limit", dl_args.limit, "at most this many")->check(CLI::PositiveNumber);
  auto* kafka_mock = cli.add_subcommand("kafka-mock", "embedded Kafka-protocol broker on loopback");
  auto* console = cli.add_subcommand(
      "console", "the operator console: a web page and its JSON API on SAGAFLOW_CONSOLE_ADDR");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return cli.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (const auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    print_error(what + " (see sagaflow --help)");
    return 2;
  }

  for (auto& [key, value] : flag_values) {
    if (!value.empty()) sources.flags.emplace(key, value);
  }
  auto config = sagaflow::load_config(sources);
  if (!config) {
    print_error(config.error().detail);
    return 2;
  }
  sagaflow::log::set_level(config->log_level);
  const Config& c = config.value();
  // One-shot tools print their answer, or one line saying why not; their connections'
  // chatter (reconnect warnings...) shows only at debug level.
  const bool tool = status->parsed() || saga_show->parsed() || dlq_list->parsed() ||
                    dlq_replay->parsed() || endpoints->parsed() || deliveries->parsed();
  if (tool && c.log_level != sagaflow::log::Level::debug)
    sagaflow::log::set_level(sagaflow::log::Level::error);

  if (publish->parsed()) {
    if (gen_opt->count() > 0) publish_args.generate = generate;
    if (file_opt->count() == 0 && gen_opt->count() == 0) {
      print_error("publish needs --file F or --generate N (see sagaflow publish --help)");
      return 2;
    }
    return app::run_publish(c, publish_args);
  }
  if (worker->parsed()) return app::run_worker(c);
  if (topology_apply->parsed()) return app::run_topology_apply(c);
  if (simulate->parsed()) return app::run_simulate(c, sim);
  if (saga_show->parsed()) return app::run_saga_show(c, order_id);
  if (status->parsed()) return app::run_status(c, status_json);
  if (dlq_list->parsed()) return app::run_dlq_list(c, dlq_args);
  if (dlq_replay->parsed()) return app::run_dlq_replay(c, dlq_args);
  if (webhook->parsed()) return app::run_webhook(c);
  if (deliver->parsed()) return app::run_deliver(c);
  if (endpoints->parsed()) {
    for (auto* sub : endpoints->get_subcommands()) {
      if (sub->parsed()) ep_args.action = sub->get_name();
    }
    return app::run_endpoints(c, ep_args);
  }
  if (deliveries->parsed()) {
    for (auto* sub : deliveries->get_subcommands()) {
      if (sub->parsed()) dl_args.action = sub->get_name();
    }
    return app::run_deliveries(c, dl_args);
  }
  if (kafka_mock->parsed()) return app::run_kafka_mock(c);
  if (console->parsed()) return app::run_console(c);
  print_error("no subcommand given (see sagaflow --help)");
  return 2;
}
