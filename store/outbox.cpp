#include "store/outbox.hpp"

#include <utility>

#include <fmt/format.h>

#include "store/impl/scripts.hpp"

namespace sagaflow::store {

Outbox::Outbox(RedisClient& redis, OutboxOptions options)
    : redis_(redis), options_(std::move(options)) {
  if (options_.partitions < 1) options_.partitions = 1;
  if (options_.consumer.empty()) options_.consumer = "sagaflow";
  if (options_.claim_batch < 1) options_.claim_batch = 100;
  if (options_.min_idle_ms < 0) options_.min_idle_ms = 0;
  cursors_.assign(static_cast<std::size_t>(options_.partitions), "0-0");
  ack_script_ = redis_.register_script("outbox_ack.lua", std::string(impl::kOutboxAckScript));
}

void Outbox::ack(int partition, std::vector<std::string> stream_ids, AckCallback done) {
  if (stream_ids.empty()) {
    if (done) done(Status::success());
    return;
  }
  std::vector<std::string> args;
  args.reserve(stream_ids.size() + 1);
  args.emplace_back(kOutboxGroup);
  for (auto& id : stream_ids) args.push_back(std::move(id));
  redis_.eval(
      ack_script_, {Keyspace::outbox_key(partition)}, std::move(args),
      [done = std::move(done)](Result<Reply> r) {
        if (!done) return;
        if (!r.ok()) return done(std::move(r).error());
        if (r->is_error()) return done(make_error(Errc::internal, "outbox_ack.lua: " + r->str));
        done(Status::success());
      },
      options_.timeout_ms);
}

void Outbox::claim_stale(int partition, ClaimCallback done) {
  if (partition < 0 || partition >= options_.partitions) {
    return done(make_error(Errc::internal, fmt::format("no outbox partition {}", partition)));
  }
  const auto slot = static_cast<std::size_t>(partition);
  redis_.command(
      {"XAUTOCLAIM", Keyspace::outbox_key(partition), std::string(kOutboxGroup), options_.consumer,
       std::to_string(options_.min_idle_ms), cursors_[slot], "COUNT",
       std::to_string(options_.claim_batch)},
      [this, slot, done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        Reply& reply = r.value();
        if (reply.is_error()) {
          // No stream or no group yet: nothing was ever written to this partition.
          if (reply.str.rfind("NOGROUP", 0) == 0) return done(std::vector<OutboxEntry>{});
          return done(make_error(Errc::internal, "XAUTOCLAIM: " + reply.str));
        }
        if (!reply.is_array() || reply.elements.size() < 2) {
          return done(make_error(Errc::internal, "XAUTOCLAIM: unexpected reply"));
        }
        cursors_[slot] = reply.elements[0].str.empty() ? "0-0" : reply.elements[0].str;
        std::vector<OutboxEntry> entries;
        for (Reply& e : reply.elements[1].elements) {
          // [id, [field, value, ...]]; a nil body means the entry was deleted meanwhile.
          if (e.elements.size() != 2 || !e.elements[1].is_array()) continue;
          OutboxEntry entry;
          entry.stream_id = std::move(e.elements[0].str);
          auto& fv = e.elements[1].elements;
          for (std::size_t i = 0; i + 1 < fv.size(); i += 2) {
            const std::string& f = fv[i].str;
            std::string& v = fv[i + 1].str;
            if (f == "id") {
              entry.command.id = std::move(v);
            } else if (f == "exchange") {
              entry.command.exchange = std::move(v);
            } else if (f == "route") {
              entry.command.route = std::move(v);
            } else if (f == "body") {
              entry.command.body = std::move(v);
            }
          }
          entries.push_back(std::move(entry));
        }
        done(std::move(entries));
      },
      options_.timeout_ms);
}

}  // namespace sagaflow::store
