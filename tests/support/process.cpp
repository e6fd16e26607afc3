// Process: a child in its own process group, stdout/stderr drained by a background thread.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "support/impl/child.hpp"
#include "support/servers.hpp"

namespace sagaflow::testing {

struct Process::Impl {
  pid_t pid = 0;
  std::optional<int> exit_code;
  int wake[2] = {-1, -1};  // the destructor writes to wake[1] to stop the reader
  std::thread reader;

  std::mutex mutex;
  std::condition_variable changed;
  std::string out, err;
  std::size_t line_pos = 0;  // read_stdout_line's position in `out`
  bool out_open = false;     // stdout pipe still open
  int open_streams = 0;      // pipes still open

  void drain(int out_fd, int err_fd) {
    std::array<pollfd, 3> fds{pollfd{out_fd, POLLIN, 0}, pollfd{err_fd, POLLIN, 0},
                              pollfd{wake[0], POLLIN, 0}};
    std::array<char, 65536> buf;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[2].revents != 0) break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        const ssize_t n = ::read(fds[i].fd, buf.data(), buf.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        std::lock_guard lock(mutex);
        if (n > 0) {
          (i == 0 ? out : err).append(buf.data(), static_cast<std::size_t>(n));
        } else {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          if (i == 0) out_open = false;
          --open_streams;
        }
        changed.notify_all();
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0) ::close(fds[i].fd);
    }
    std::lock_guard lock(mutex);
    out_open = false;
    open_streams = 0;
    changed.notify_all();
  }
};

Process::Process(std::vector<std::string> argv,
                 std::vector<std::pair<std::string, std::string>> extra_env, bool capture_stdout)
    : impl_(std::make_unique<Impl>()) {
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd :
         {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], impl_->wake[0], impl_->wake[1]}) {
      if (fd >= 0) ::close(fd);
    }
  };
  if ((capture_stdout && ::pipe2(out_pipe, O_CLOEXEC) != 0) || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(impl_->wake, O_CLOEXEC) != 0) {
    const int e = errno;
    close_all();
    throw std::runtime_error(std::string("Process: pipe: ") + std::strerror(e));
  }
  impl::SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.env = std::move(extra_env);
  spawn.stdout_fd = out_pipe[1];
  spawn.stderr_fd = err_pipe[1];
  try {
    impl_->pid = impl::spawn(spawn);
  } catch (...) {
    close_all();
    throw;
  }
  ::close(err_pipe[1]);
  if (out_pipe[1] >= 0) ::close(out_pipe[1]);
  impl_->out_open = capture_stdout;
  impl_->open_streams = capture_stdout ? 2 : 1;
  impl_->reader =
      std::thread([impl = impl_.get(), o = out_pipe[0], e = err_pipe[0]] { impl->drain(o, e); });
}

Process::~Process() {
  if (!impl_) return;
  if (!impl_->exit_code) {
    ::kill(-impl_->pid, SIGKILL);
    impl::wait_exit(impl_->pid, std::chrono::seconds(10));
  }
  // A grandchild may still hold the pipes open: do not wait for EOF, stop the reader.
  [[maybe_unused]] auto n = ::write(impl_->wake[1], "x", 1);
  if (impl_->reader.joinable()) impl_->reader.join();
  ::close(impl_->wake[0]);
  ::close(impl_->wake[1]);
}

pid_t Process::pid() const {
  return impl_->pid;
}

void Process::signal(int sig) {
  if (!impl_->exit_code) ::kill(impl_->pid, sig);
}

std::optional<int> Process::wait_for(std::chrono::milliseconds timeout) {
  if (!impl_->exit_code) impl_->exit_code = impl::wait_exit(impl_->pid, timeout);
  if (impl_->exit_code) {
    // Let the reader catch up with what the child wrote before it exited.
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait_for(lock, std::chrono::milliseconds(200),
                            [this] { return impl_->open_streams == 0; });
  }
  return impl_->exit_code;
}

std::string Process::read_stdout() {
  std::lock_guard lock(impl_->mutex);
  return impl_->out;
}

std::string Process::read_stderr() {
  std::lock_guard lock(impl_->mutex);
  return impl_->err;
}

std::string Process::read_stdout_line(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  std::size_t nl = std::string::npos;
  const bool got = impl_->changed.wait_for(lock, timeout, [&] {
    nl = impl_->out.find('\n', impl_->line_pos);
    return nl != std::string::npos || !impl_->out_open;
  });
  if (!got || nl == std::string::npos) {
    throw std::runtime_error(std::string("Process ") + std::to_string(impl_->pid) + ": " +
                             (got ? "stdout closed" : "timed out") +
                             " before a full line; stderr: " + impl_->err);
  }
  std::string line = impl_->out.substr(impl_->line_pos, nl - impl_->line_pos);
  impl_->line_pos = nl + 1;
  return line;
}

}  // namespace sagaflow::testing
