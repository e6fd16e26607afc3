#include "http/server.hpp"

#include <http_parser.h>
#include <uv.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <list>

#include <fmt/format.h>

namespace sagaflow::http {

std::string_view Request::header(std::string_view lower_name) const noexcept {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

std::string_view status_text(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

namespace {

struct Connection {
  uv_tcp_t tcp{};
  http_parser parser{};
  std::weak_ptr<Server::Impl> server;
  Request request;
  std::string header_field;
  bool in_value = false;
  bool closing = false;
  bool keep_alive = true;
  bool answered_too_large = false;
  std::uint64_t generation = 0;  // bumps per request; late answers for a closed one are dropped
  std::list<Connection*>::iterator self;
};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  uv_loop_t* loop = nullptr;
  uv_tcp_t listener{};
  bool listening = false;
  bool stopped = false;
  Handler handler;
  std::size_t max_body = 0;
  http_parser_settings settings{};
  std::list<Connection*> connections;
  int bound_port = 0;

  void close_connection(Connection* c) {
    if (c->closing) return;
    c->closing = true;
    connections.erase(c->self);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
  }

  void write_response(Connection* c, const Response& r, bool close_after) {
    auto* buf = new std::string(fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        r.status, status_text(r.status), r.content_type, r.body.size(),
        close_after ? "close" : "keep-alive"));
    buf->append(r.body);
    auto* req = new uv_write_t;
    req->data = buf;
    uv_buf_t b = uv_buf_init(buf->data(), static_cast<unsigned>(buf->size()));
    const int rc =
        uv_write(req, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1, [](uv_write_t* w, int) {
          delete static_cast<std::string*>(w->data);
          delete w;
        });
    if (rc != 0) {
      delete buf;
      delete req;
      close_connection(c);
      return;
    }
    if (close_after) close_connection(c);
  }
};

namespace {

Connection* conn_of(http_parser* p) {
  return static_cast<Connection*>(p->data);
}

int on_url(http_parser* p, const char* at, size_t len) {
  conn_of(p)->request.path.append(at, len);
  return 0;
}

int on_header_field(http_parser* p, const char* at, size_t len) {
  Connection* c = conn_of(p);
  if (c->in_value || c->header_field.empty()) {
    if (c->in_value) c->header_field.clear();
    c->in_value = false;
  }
  c->header_field.append(at, len);
  return 0;
}

int on_header_value(http_parser* p, const char* at, size_t len) {
  Connection* c = conn_of(p);
  if (!c->in_value) {
    std::string name = c->header_field;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    c->request.headers.emplace_back(std::move(name), std::string());
    c->in_value = true;
  }
  c->request.headers.back().second.append(at, len);
  return 0;
}

int on_headers_complete(http_parser* p) {
  Connection* c = conn_of(p);
  auto server = c->server.lock();
  if (!server) return 1;
  // The body limit is checked before any byte of the body is read (and before any HMAC work).
  if (p->content_length != ULLONG_MAX && p->content_length > server->max_body) {
    c->answered_too_large = true;
    server->write_response(c,
                           Response{413, "application/json",
                                    R"({"error":"too_large"})"
                                    "\n"},
                           true);
    return 1;
  }
  c->request.method = http_method_str(static_cast<http_method>(p->method));
  if (const auto q = c->request.path.find('?'); q != std::string::npos) c->request.path.resize(q);
  return 0;
}

int on_body(http_parser* p, const char* at, size_t len) {
  Connection* c = conn_of(p);
  auto server = c->server.lock();
  if (!server) return 1;
  if (c->request.body.size() + len > server->max_body) {  // chunked bodies have no length up front
    c->answered_too_large = true;
    server->write_response(c,
                           Response{413, "application/json",
                                    R"({"error":"too_large"})"
                                    "\n"},
                           true);
    return 1;
  }
  c->request.body.append(at, len);
  return 0;
}

int on_message_complete(http_parser* p) {
  Connection* c = conn_of(p);
  auto server = c->server.lock();
  if (!server) return 1;
  c->keep_alive = http_should_keep_alive(p) != 0;
  Request request = std::move(c->request);
  c->request = Request{};
  c->header_field.clear();
  c->in_value = false;
  const std::uint64_t gen = ++c->generation;
  std::weak_ptr<Server::Impl> weak = server;
  // A connection may close before the handler answers: the answer checks that it is still
  // there (and on the same request) and is dropped otherwise.
  server->handler(request, [weak, c, gen, keep = c->keep_alive](Response r) {
    auto s = weak.lock();
    if (!s) return;
    const bool present =
        std::find(s->connections.begin(), s->connections.end(), c) != s->connections.end();
    if (!present || c->generation != gen || c->closing) return;
    s->write_response(c, r, !keep);
  });
  return 0;
}

}  // namespace

Server::Server(uv_loop_s* loop, Handler handler, std::size_t max_body_bytes)
    : impl_(std::make_shared<Impl>()) {
  impl_->loop = loop;
  impl_->handler = std::move(handler);
  impl_->max_body = max_body_bytes;
  http_parser_settings_init(&impl_->settings);
  impl_->settings.on_url = on_url;
  impl_->settings.on_header_field = on_header_field;
  impl_->settings.on_header_value = on_header_value;
  impl_->settings.on_headers_complete = on_headers_complete;
  impl_->settings.on_body = on_body;
  impl_->settings.on_message_complete = on_message_complete;
}

Server::~Server() {
  stop();
}

int Server::port() const noexcept {
  return impl_->bound_port;
}

Status Server::listen(const std::string& host, int port) {
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return make_error(Errc::invalid_config, fmt::format("'{}' is not an IP address", host));
  }
  uv_tcp_init(impl_->loop, &impl_->listener);
  impl_->listener.data = impl_.get();
  impl_->listening = true;
  int rc = uv_tcp_bind(&impl_->listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(
        reinterpret_cast<uv_stream_t*>(&impl_->listener), 128, [](uv_stream_t* l, int status) {
          auto* s = static_cast<Impl*>(l->data);
          if (status < 0 || s->stopped) return;
          auto* c = new Connection;
          c->server = s->weak_from_this();
          uv_tcp_init(s->loop, &c->tcp);
          c->tcp.data = c;
          http_parser_init(&c->parser, HTTP_REQUEST);
          c->parser.data = c;
          s->connections.push_front(c);
          c->self = s->connections.begin();
          if (uv_accept(l, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
            s->close_connection(c);
            return;
          }
          uv_read_start(
              reinterpret_cast<uv_stream_t*>(&c->tcp),
              [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
                buf->base = new char[suggested];
                buf->len = suggested;
              },
              [](uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
                auto* conn = static_cast<Connection*>(stream->data);
                auto server = conn->server.lock();
                if (n > 0 && server && !conn->closing) {
                  const size_t parsed = http_parser_execute(&conn->parser, &server->settings,
                                                            buf->base, static_cast<size_t>(n));
                  if (!conn->closing &&
                      (conn->parser.http_errno != HPE_OK || parsed != static_cast<size_t>(n))) {
                    if (!conn->answered_too_large) {
                      server->write_response(conn,
                                             Response{400, "application/json",
                                                      R"({"error":"bad_request"})"
                                                      "\n"},
                                             true);
                    } else {
                      server->close_connection(conn);
                    }
                  }
                } else if (n < 0 && server) {
                  server->close_connection(conn);
                }
                delete[] buf->base;
              });
        });
  }
  if (rc != 0) {
    return make_error(Errc::unavailable,
                      fmt::format("cannot listen on {}:{}: {}", host, port, uv_strerror(rc)));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&impl_->listener, reinterpret_cast<sockaddr*>(&bound), &len);
  impl_->bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return Status::success();
}

void Server::stop() noexcept {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  while (!impl_->connections.empty()) impl_->close_connection(impl_->connections.front());
  if (impl_->listening) {
    // The Impl must outlive the close callback: hold a reference until it runs.
    auto* keep = new std::shared_ptr<Impl>(impl_);
    impl_->listener.data = keep;
    uv_close(reinterpret_cast<uv_handle_t*>(&impl_->listener),
             [](uv_handle_t* h) { delete static_cast<std::shared_ptr<Impl>*>(h->data); });
  }
}

}  // namespace sagaflow::http
