// WebhookReceiver: one thread, non-blocking sockets, poll() over the listening socket, an
// eventfd (commands and shutdown) and every connection.
#include "support/webhook_receiver.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

namespace sagaflow::testing {

namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 302:
      return "Found";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 410:
      return "Gone";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

enum class Parse { complete, more, bad };

// Parses one request from the front of `in`: on `complete`, fills `r` and `consumed`.
Parse parse_request(const std::string& in, ReceivedRequest& r, std::size_t& consumed) {
  const std::size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return in.size() > 64 * 1024 ? Parse::bad : Parse::more;
  const std::string_view head(in.data(), head_end);
  std::size_t line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const std::size_t sp1 = request_line.find(' ');
  const std::size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return Parse::bad;
  r.method = std::string(request_line.substr(0, sp1));
  r.path = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  r.headers.clear();
  std::optional<std::size_t> content_length;
  bool chunked = false;
  while (line_end != std::string_view::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string_view line = head.substr(
        start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Parse::bad;
    std::string name = lower(trim(line.substr(0, colon)));
    std::string value(trim(line.substr(colon + 1)));
    if (name == "content-length") content_length = std::stoul(value);
    if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) {
      chunked = true;
    }
    r.headers.emplace_back(std::move(name), std::move(value));
  }
  std::size_t pos = head_end + 4;
  r.body.clear();
  if (chunked) {
    for (;;) {
      const std::size_t eol = in.find("\r\n", pos);
      if (eol == std::string::npos) return Parse::more;
      const std::size_t size = std::stoul(in.substr(pos, eol - pos), nullptr, 16);
      pos = eol + 2;
      if (size == 0) {
        // No trailers expected: the final CRLF.
        if (in.size() < pos + 2) return Parse::more;
        pos += 2;
        break;
      }
      if (in.size() < pos + size + 2) return Parse::more;
      r.body.append(in, pos, size);
      pos += size + 2;
    }
  } else if (content_length) {
    if (in.size() < pos + *content_length) return Parse::more;
    r.body.assign(in, pos, *content_length);
    pos += *content_length;
  }
  consumed = pos;
  return Parse::complete;
}

std::string make_response(const Behaviour& b) {
  std::string out = "HTTP/1.1 " + std::to_string(b.status) + " " + reason(b.status) + "\r\n";
  out += "Content-Length: " + std::to_string(b.body_bytes) + "\r\n";
  if (!b.retry_after.empty()) out += "Retry-After: " + b.retry_after + "\r\n";
  for (const auto& [k, v] : b.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  out.append(b.body_bytes, 'x');
  return out;
}

}  // namespace

std::string ReceivedRequest::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

bool ReceivedRequest::has_header(std::string_view lower_name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return h.first == lower_name; });
}

struct WebhookReceiver::Conn {
  int fd = -1;
  std::size_t id = 0;
  std::string in;
  std::string out;
  bool hung = false;                     // a request that will never be answered
  std::optional<Clock::time_point> due;  // a delayed answer pending
  std::string delayed;                   // its bytes
  bool close_after_write = false;
  bool closed = false;

  void close_now(bool rst) {
    if (closed) return;
    if (rst) {
      linger l{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(fd);
    closed = true;
  }
};

WebhookReceiver::WebhookReceiver() {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error("WebhookReceiver: eventfd failed");
  try {
    listen_now();
  } catch (...) {
    ::close(wake_fd_);
    throw;
  }
  thread_ = std::thread([this] { run(); });
}

WebhookReceiver::~WebhookReceiver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake();
  thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  ::close(wake_fd_);
}

std::string WebhookReceiver::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

void WebhookReceiver::listen_now() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("WebhookReceiver: socket: ") + strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port_));
  socklen_t len = sizeof addr;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  if (::bind(fd, sa, sizeof addr) != 0 || ::listen(fd, 128) != 0 ||
      ::getsockname(fd, sa, &len) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error("WebhookReceiver: listen on port " + std::to_string(port_) + ": " +
                             strerror(e));
  }
  port_ = ntohs(addr.sin_port);
  listen_fd_ = fd;
}

void WebhookReceiver::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

void WebhookReceiver::command(int cmd) {
  std::unique_lock lock(mu_);
  pending_cmd_ = cmd;
  wake();
  cv_.wait(lock, [&] { return pending_cmd_ == 0 || stop_; });
}

void WebhookReceiver::set(Behaviour b, std::string prefix) {
  std::lock_guard lock(mu_);
  rules_[std::move(prefix)] = std::move(b);
}

void WebhookReceiver::respond(int status, std::string retry_after, std::string prefix) {
  Behaviour b;
  b.status = status;
  b.retry_after = std::move(retry_after);
  set(std::move(b), std::move(prefix));
}

void WebhookReceiver::slow(std::chrono::milliseconds delay, int status, std::string prefix) {
  Behaviour b;
  b.status = status;
  b.delay = delay;
  set(std::move(b), std::move(prefix));
}

void WebhookReceiver::hang(std::string prefix) {
  Behaviour b;
  b.kind = Behaviour::Kind::hang;
  set(std::move(b), std::move(prefix));
}

void WebhookReceiver::reset(std::string prefix) {
  Behaviour b;
  b.kind = Behaviour::Kind::reset;
  set(std::move(b), std::move(prefix));
}

void WebhookReceiver::clear_rules() {
  std::lock_guard lock(mu_);
  rules_.clear();
}

void WebhookReceiver::refuse_connections() {
  command(1);
}
void WebhookReceiver::accept_connections() {
  command(2);
}

std::vector<ReceivedRequest> WebhookReceiver::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::size_t WebhookReceiver::count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

std::size_t WebhookReceiver::count(std::string_view path_prefix) const {
  std::lock_guard lock(mu_);
  return static_cast<std::size_t>(
      std::count_if(requests_.begin(), requests_.end(), [&](const ReceivedRequest& r) {
        return std::string_view(r.path).substr(0, path_prefix.size()) == path_prefix;
      }));
}

std::size_t WebhookReceiver::connections() const {
  std::lock_guard lock(mu_);
  return connections_;
}

std::size_t WebhookReceiver::open_connections() const {
  std::lock_guard lock(mu_);
  return open_;
}

bool WebhookReceiver::wait_for_count(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

Behaviour WebhookReceiver::behaviour_for(const std::string& path) const {
  // Called with mu_ held. The longest matching prefix wins; "" matches everything.
  const Behaviour* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& [prefix, b] : rules_) {
    if (path.compare(0, prefix.size(), prefix) == 0 &&
        (best == nullptr || prefix.size() >= best_len)) {
      best = &b;
      best_len = prefix.size();
    }
  }
  return best != nullptr ? *best : Behaviour{};
}

void WebhookReceiver::run() {
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<pollfd> fds;
  auto close_conn = [&](Conn& c, bool rst) {
    if (c.closed) return;
    c.close_now(rst);
    std::lock_guard lock(mu_);
    --open_;
  };

  // Handles the complete requests at the front of c.in until one must wait.
  auto process = [&](Conn& c) {
    while (!c.closed && !c.hung && !c.due) {
      ReceivedRequest r;
      std::size_t consumed = 0;
      Parse p = Parse::bad;
      try {
        p = parse_request(c.in, r, consumed);
      } catch (const std::exception&) {
        p = Parse::bad;
      }
      if (p == Parse::more) return;
      if (p == Parse::bad) {
        c.out += "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        c.close_after_write = true;
        c.in.clear();
        return;
      }
      c.in.erase(0, consumed);
      r.at = Clock::now();
      r.wall = std::chrono::system_clock::now();
      r.connection = c.id;
      if (lower(r.header("connection")) == "close") c.close_after_write = true;
      Behaviour b;
      {
        std::lock_guard lock(mu_);
        b = behaviour_for(r.path);
        requests_.push_back(std::move(r));
      }
      cv_.notify_all();
      switch (b.kind) {
        case Behaviour::Kind::reset:
          close_conn(c, true);
          return;
        case Behaviour::Kind::hang:
          c.hung = true;
          return;
        case Behaviour::Kind::respond:
          if (b.delay.count() > 0) {
            c.due = Clock::now() + b.delay;
            c.delayed = make_response(b);
          } else {
            c.out += make_response(b);
          }
          break;
      }
    }
  };

  for (;;) {
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    const bool listening = listen_fd_ >= 0;
    if (listening) fds.push_back({listen_fd_, POLLIN, 0});
    int timeout = -1;
    const auto now = Clock::now();
    for (const auto& c : conns) {
      auto ev = static_cast<short>(POLLIN);
      if (!c->out.empty()) ev = static_cast<short>(ev | POLLOUT);
      fds.push_back({c->fd, ev, 0});
      if (c->due) {
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(*c->due - now).count() + 1;
        const int t = static_cast<int>(std::max<long long>(ms, 0));
        timeout = timeout < 0 ? t : std::min(timeout, t);
      }
    }
    ::poll(fds.data(), fds.size(), timeout);

    if ((fds[0].revents & POLLIN) != 0) {
      std::uint64_t v = 0;
      [[maybe_unused]] const auto n = ::read(wake_fd_, &v, sizeof v);
    }
    {
      std::unique_lock lock(mu_);
      if (stop_) break;
      if (pending_cmd_ != 0) {
        const int cmd = pending_cmd_;
        lock.unlock();
        if (cmd == 1) {
          if (listen_fd_ >= 0) ::close(listen_fd_);
          listen_fd_ = -1;
          for (auto& c : conns) close_conn(*c, false);
        } else if (cmd == 2 && listen_fd_ < 0) {
          try {
            listen_now();
          } catch (const std::exception&) {
            // Left refused; the test sees connections fail.
          }
        }
        lock.lock();
        pending_cmd_ = 0;
        cv_.notify_all();
      }
    }

    if (listening && listen_fd_ >= 0 && (fds[1].revents & POLLIN) != 0) {
      for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        {
          std::lock_guard lock(mu_);
          c->id = ++connections_;
          ++open_;
        }
        conns.push_back(std::move(c));
      }
    }

    const std::size_t first_conn = listening ? 2 : 1;
    for (std::size_t i = first_conn; i < fds.size(); ++i) {
      Conn& c = *conns[i - first_conn];
      if (c.closed) continue;
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char buf[64 * 1024];
        for (;;) {
          const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
          if (n > 0) {
            c.in.append(buf, static_cast<std::size_t>(n));
            continue;
          }
          if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            close_conn(c, false);
          }
          break;
        }
        if (!c.closed) process(c);
      }
    }

    const auto after = Clock::now();
    for (auto& c : conns) {
      if (c->closed) continue;
      if (c->due && *c->due <= after) {
        c->due.reset();
        c->out += std::move(c->delayed);
        c->delayed.clear();
        process(*c);
      }
      while (!c->out.empty() && !c->closed) {
        const ssize_t n = ::send(c->fd, c->out.data(), c->out.size(), MSG_NOSIGNAL);
        if (n > 0) {
          c->out.erase(0, static_cast<std::size_t>(n));
        } else {
          if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            close_conn(*c, false);
          }
          break;
        }
      }
      if (!c->closed && c->out.empty() && c->close_after_write) close_conn(*c, false);
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const auto& c) { return c->closed; }),
                conns.end());
  }
  for (auto& c : conns) close_conn(*c, false);
}

}  // namespace sagaflow::testing
