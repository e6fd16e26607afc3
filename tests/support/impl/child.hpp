// Private helpers of the test harness: spawning, reaping and stopping children, temporary
// directories. Not for tests: use Process and the server classes in support/servers.hpp.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sagaflow::testing::impl {

struct SpawnOptions {
  std::vector<std::string> argv;                         // argv[0] searched in PATH
  std::vector<std::pair<std::string, std::string>> env;  // added to / replacing environ
  int stdout_fd = -1;                                    // dup2'ed onto 1; -1 = /dev/null
  int stderr_fd = -1;                                    // dup2'ed onto 2; -1 = /dev/null
  bool die_with_parent = false;  // PR_SET_PDEATHSIG SIGKILL (tied to the spawning thread)
};

// fork + exec in a new session (so a new process group whose id is the pid). Throws if the
// exec fails (the error comes back over a close-on-exec pipe).
pid_t spawn(const SpawnOptions& options);

// Waits for the child to exit and reaps it. Exit code, 128 + signal if signalled, nullopt on
// timeout, -1 if it is not (or no longer) our child. Never throws.
std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds timeout);

// SIGCONT + `sig` to the process group `pid`, waits `grace`, then SIGKILL to the group; always
// reaps the leader. Returns its exit code.
int stop_group(pid_t pid, int sig, std::chrono::milliseconds grace);

// A fresh directory /tmp/<prefix>XXXXXX (or under $TMPDIR).
std::string make_temp_dir(const std::string& prefix);
void remove_tree(const std::string& dir) noexcept;

void write_file(const std::string& path, const std::string& content);
// The last `max_bytes` of a file ("" if missing), for error messages.
std::string file_tail(const std::string& path, std::size_t max_bytes = 2000);

}  // namespace sagaflow::testing::impl
