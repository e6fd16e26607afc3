#include "store/impl/sum_hashes.hpp"

#include <memory>
#include <optional>
#include <utility>

namespace sagaflow::store::impl {

void sum_hashes(RedisClient& redis, std::vector<std::string> keys, Millis timeout_ms,
                SumCallback done) {
  struct Gather {
    std::map<std::string, std::int64_t> sums;
    std::size_t remaining = 0;
    std::optional<Error> error;
    SumCallback done;
  };
  auto g = std::make_shared<Gather>();
  g->remaining = keys.size();
  g->done = std::move(done);
  if (keys.empty()) return g->done(std::move(g->sums));
  for (auto& key : keys) {
    redis.command(
        {"HGETALL", std::move(key)},
        [g](Result<Reply> r) {
          if (!r.ok()) {
            if (!g->error) g->error = r.error();
          } else if (r->is_error()) {
            if (!g->error) g->error = make_error(Errc::internal, "HGETALL: " + r->str);
          } else {
            const auto& el = r->elements;
            for (std::size_t i = 0; i + 1 < el.size(); i += 2) {
              std::int64_t n = 0;
              if (el[i + 1].as_int(n)) g->sums[el[i].str] += n;
            }
          }
          if (--g->remaining > 0) return;
          if (g->error) return g->done(std::move(*g->error));
          g->done(std::move(g->sums));
        },
        timeout_ms);
  }
}

}  // namespace sagaflow::store::impl
