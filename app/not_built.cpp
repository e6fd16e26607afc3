// Subcommands whose implementation has not landed yet say so plainly and exit 1.
#include <cstdio>

#include "app/commands.hpp"

namespace sagaflow::app {

int not_built(const char* name) {
  std::fprintf(stderr, "sagaflow %s: not available in this build yet\n", name);
  return 1;
}

}  // namespace sagaflow::app
