// sagaflow publish: --file / --generate go through producers' publish job (validated, with
// confirms, progress and summary), on RabbitMQ or Kafka. --raw sends each line of --file
// unvalidated (for poison message drills), with routing key --route, confirmed like the rest.
#include "app/commands.hpp"
#include "brokers/broker.hpp"
#include "producers/publish_job.hpp"

namespace sagaflow::app {

int run_publish(const Config& config, const PublishArgs& args) {
  PublishOptions o;
  o.file = args.file;
  o.generate = args.generate;
  o.rate = args.rate;
  o.stores = args.stores;
  o.seed = args.seed;
  o.raw = args.raw;
  o.route = args.route;
  const auto broker = brokers::open_broker(config);
  return run_publish_job(config, o, brokers::publish_target(*broker));
}

}  // namespace sagaflow::app
