#include "app/impl/dead_letter_listener.hpp"

#include "core/clock.hpp"
#include "core/log.hpp"
#include "store/dead_letters.hpp"

namespace sagaflow::app {

DeadLetterListener index_dead_letters(store::DeadLetterIndex& index) {
  return [&index](const DeadLetterNote& note) {
    store::DeadLetterEntry e;
    e.id = note.id;
    e.reason = note.reason;
    e.detail = note.detail;
    e.attempts = note.attempts;
    e.route = note.route;
    e.at = SystemClock().now_ms();
    e.body_preview = store::body_preview(note.body);
    e.message_id = note.message_id;
    e.where = note.where;
    index.add(e, [id = e.id](Status st) {
      if (!st) {
        log::warn("dead letter not recorded in the index (it is in the broker)",
                  {{"dead_letter_id", id}, {"error", st.error().detail}});
      }
    });
  };
}

}  // namespace sagaflow::app
