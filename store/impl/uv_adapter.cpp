#include "store/impl/uv_adapter.hpp"

#include <hiredis/hiredis.h>

namespace sagaflow::store::impl {
namespace {

struct Events {
  redisAsyncContext* context = nullptr;
  uv_poll_t handle{};
  uv_idle_t idle{};        // writes what the turn buffered, before the loop polls
  int events = 0;          // what hiredis wants the poll handle to watch
  int armed = 0;           // what it watches (uv_poll_start / stop cost syscalls)
  bool write_due = false;  // buffered commands for the next idle phase
  int open_handles = 2;    // the poll and idle handles, until both are closed
};

void on_poll(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<Events*>(handle->data);
  // On an error libuv has stopped the handle: let hiredis find the socket error itself.
  if (status != 0) p->armed = 0;
  const int ev = status != 0 ? p->events | (p->write_due ? UV_WRITABLE : 0) : events;
  if (p->context != nullptr && (ev & UV_READABLE) != 0) redisAsyncHandleRead(p->context);
  if (p->context != nullptr && (ev & UV_WRITABLE) != 0) redisAsyncHandleWrite(p->context);
}

// Re-arms only on a change.
void update(Events* p) {
  if (p->events == p->armed) return;
  if (p->events != 0) {
    uv_poll_start(&p->handle, p->events, &on_poll);
  } else {
    uv_poll_stop(&p->handle);
  }
  p->armed = p->events;
}

// > 0 inside on_idle (of any context on this thread): a write asked for then (what the socket
// did not take, or a cluster client asking another node after a failed write) takes the real
// watch, so that a full socket is waited for instead of retried every turn.
thread_local int in_on_idle = 0;

void on_idle(uv_idle_t* handle) {
  auto* p = static_cast<Events*>(handle->data);
  uv_idle_stop(handle);
  if (!p->write_due || p->context == nullptr) return;
  p->write_due = false;
  ++in_on_idle;
  // Writes what the socket takes; hiredis then asks for writability only if some is left,
  // which add_write (below) turns into a real watch. It may also disconnect (a socket
  // error): cleanup() runs inside, and `p` lives on until its handles are closed.
  redisAsyncHandleWrite(p->context);
  --in_on_idle;
}

void add_read(void* privdata) {
  auto* p = static_cast<Events*>(privdata);
  p->events |= UV_READABLE;
  update(p);
}
void del_read(void* privdata) {
  auto* p = static_cast<Events*>(privdata);
  p->events &= ~UV_READABLE;
  update(p);
}
void add_write(void* privdata) {
  auto* p = static_cast<Events*>(privdata);
  const bool connected = p->context != nullptr && (p->context->c.flags & REDIS_CONNECTED) != 0;
  if (connected && in_on_idle == 0 && (p->events & UV_WRITABLE) == 0) {
    if (!p->write_due) uv_idle_start(&p->idle, &on_idle);
    p->write_due = true;
    return;
  }
  // a connect to complete, a socket that took only a part, or a write asked for in on_idle
  p->events |= UV_WRITABLE;
  update(p);
}
void del_write(void* privdata) {
  auto* p = static_cast<Events*>(privdata);
  p->write_due = false;
  p->events &= ~UV_WRITABLE;
  update(p);
}

void on_closed(uv_handle_t* h) {
  auto* p = static_cast<Events*>(h->data);
  if (--p->open_handles == 0) delete p;
}

void cleanup(void* privdata) {
  auto* p = static_cast<Events*>(privdata);
  p->context = nullptr;  // the context is being freed; the handles outlive it until closed
  p->write_due = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), &on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->idle), &on_closed);
}

}  // namespace

int attach_uv(redisAsyncContext* ac, uv_loop_t* loop) {
  if (ac->ev.data != nullptr) return REDIS_ERR;
  auto* p = new Events{};
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    delete p;
    return REDIS_ERR;
  }
  uv_idle_init(loop, &p->idle);
  p->context = ac;
  p->handle.data = p;
  p->idle.data = p;
  ac->ev.addRead = &add_read;
  ac->ev.delRead = &del_read;
  ac->ev.addWrite = &add_write;
  ac->ev.delWrite = &del_write;
  ac->ev.cleanup = &cleanup;
  ac->ev.data = p;
  return REDIS_OK;
}

}  // namespace sagaflow::store::impl
