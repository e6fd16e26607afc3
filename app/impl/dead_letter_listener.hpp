#pragma once
// The dead-letter index (store/dead_letters.hpp) as the sources' DeadLetterListener.
#include "consumers/source.hpp"

namespace sagaflow::store {
class DeadLetterIndex;
}

namespace sagaflow::app {

// A listener that records each dead letter in the index, logging a failed write (the dead
// letter is in the broker either way).
DeadLetterListener index_dead_letters(store::DeadLetterIndex& index);

}  // namespace sagaflow::app
