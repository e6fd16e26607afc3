#include "store/outbox.hpp"

#include <uv.h>

#include <algorithm>
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
  if (options_.relay_lease_ms <= 0)
    options_.relay_lease_ms = std::max<Millis>(options_.min_idle_ms, 200);
  cursors_.assign(static_cast<std::size_t>(options_.partitions), "-");
  handed_out_.resize(static_cast<std::size_t>(options_.partitions));
  claim_script_ = redis_.register_script("outbox_claim.lua", std::string(impl::kOutboxClaimScript));
}

void Outbox::ack(int partition, std::vector<std::string> stream_ids, AckCallback done) {
  if (stream_ids.empty() || partition < 0 || partition >= options_.partitions) {
    if (done) done(Status::success());
    return;
  }
  auto& handed = handed_out_[static_cast<std::size_t>(partition)];
  std::vector<std::string> argv;
  argv.reserve(stream_ids.size() + 2);
  argv.emplace_back("XDEL");
  argv.push_back(Keyspace::outbox_key(partition));
  for (auto& id : stream_ids) {
    if (!handed.empty()) handed.erase(id);
    argv.push_back(std::move(id));
  }
  redis_.command(
      std::move(argv),
      [done = std::move(done)](Result<Reply> r) {
        if (!done) return;
        if (!r.ok()) return done(std::move(r).error());
        if (r->is_error()) return done(make_error(Errc::internal, "XDEL: " + r->str));
        done(Status::success());
      },
      options_.timeout_ms);
}

void Outbox::claim_stale(int partition, ClaimCallback done) {
  if (partition < 0 || partition >= options_.partitions) {
    return done(make_error(Errc::internal, fmt::format("no outbox partition {}", partition)));
  }
  const auto slot = static_cast<std::size_t>(partition);
  redis_.eval(
      claim_script_, {Keyspace::outbox_key(partition), Keyspace::outbox_relay_key(partition)},
      {options_.consumer, std::to_string(options_.relay_lease_ms),
       std::to_string(options_.min_idle_ms), cursors_[slot], std::to_string(options_.claim_batch)},
      [this, slot, done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        Reply& reply = r.value();
        if (reply.is_error())
          return done(make_error(Errc::internal, "outbox_claim.lua: " + reply.str));
        if (!reply.is_array()) return done(std::vector<OutboxEntry>{});  // another worker relays
        // The next call goes on after the last entry; a short read reached the end: start over.
        const bool full = reply.elements.size() >= static_cast<std::size_t>(options_.claim_batch);
        cursors_[slot] = full && !reply.elements.empty() && !reply.elements.back().elements.empty()
                             ? "(" + reply.elements.back().elements[0].str
                             : "-";
        const std::uint64_t now = uv_now(redis_.loop());
        const auto min_idle = static_cast<std::uint64_t>(options_.min_idle_ms);
        auto& handed = handed_out_[slot];
        std::erase_if(handed, [&](const auto& kv) { return now - kv.second >= min_idle; });
        std::vector<OutboxEntry> entries;
        for (Reply& e : reply.elements) {
          // [id, [field, value, ...]]
          if (e.elements.size() != 2 || !e.elements[1].is_array()) continue;
          if (!handed.try_emplace(e.elements[0].str, now).second) continue;  // re-sent lately
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
