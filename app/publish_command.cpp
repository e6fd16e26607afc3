// sagaflow publish: --file / --generate go through producers' publish job (validated, with
// confirms, progress and summary). --raw sends each line of --file unvalidated (for poison
// message drills), with routing key --route, and confirms each one.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "app/commands.hpp"
#include "app/impl/amqp_session.hpp"
#include "producers/publish_job.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {

namespace {

int publish_raw(const Config& config, const PublishArgs& args) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (args.file != "-") {
    file.open(args.file);
    if (!file) {
      std::fprintf(stderr, "sagaflow publish: cannot read %s\n", args.file.c_str());
      return 1;
    }
    in = &file;
  }
  auto session = AmqpSession::open(config.amqp);
  if (!session) {
    std::fprintf(stderr, "sagaflow publish: %s\n", session.error().detail.c_str());
    return 1;
  }
  if (auto st = session.value()->enable_confirms(); !st) {
    std::fprintf(stderr, "sagaflow publish: %s\n", st.error().detail.c_str());
    return 1;
  }
  std::string line;
  std::size_t sent = 0;
  while (std::getline(*in, line)) {
    if (line.empty()) continue;
    if (auto st =
            session.value()->publish_confirmed(topology::kEventsExchange, args.route, {}, line);
        !st) {
      std::fprintf(stderr, "sagaflow publish: %s\n", st.error().detail.c_str());
      return 1;
    }
    ++sent;
  }
  std::fprintf(stderr, "published %zu raw message(s) with routing key %s\n", sent,
               args.route.c_str());
  return 0;
}

}  // namespace

int run_publish(const Config& config, const PublishArgs& args) {
  if (args.raw) return publish_raw(config, args);
  PublishOptions o;
  o.file = args.file;
  o.generate = args.generate;
  o.rate = args.rate;
  o.stores = args.stores;
  o.seed = args.seed;
  return run_publish_job(config, o);
}

}  // namespace sagaflow::app
