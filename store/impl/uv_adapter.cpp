#include "store/impl/uv_adapter.hpp"

#include <hiredis/hiredis.h>

namespace sagaflow::store::impl {
namespace {

struct Events {
  redisAsyncContext* context = nullptr;
  uv_poll_t handle{};
  int events = 0;  // what hiredis wants
  int armed = 0;   // what the poll handle watches (uv_poll_start / stop cost a syscall each)
};

void on_poll(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<Events*>(handle->data);
  // On an error libuv has stopped the handle: let hiredis find the socket error itself.
  if (status != 0) p->armed = 0;
  const int ev = status != 0 ? p->events : events;
  if (p->context != nullptr && (ev & UV_READABLE) != 0) redisAsyncHandleRead(p->context);
  if (p->context != nullptr && (ev & UV_WRITABLE) != 0) redisAsyncHandleWrite(p->context);
}

// hiredis asks for writes on every command it buffers: re-arm only on a change.
void update(Events* p) {
  if (p->events == p->armed) return;
  if (p->events != 0) {
    uv_poll_start(&p->handle, p->events, &on_poll);
  } else {
    uv_poll_stop(&p->handle);
  }
  p->armed = p->events;
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
  p->events |= UV_WRITABLE;
  update(p);
}
void del_write(void* privdata) {
  auto* p = static_cast<Events*>(privdata);
  p->events &= ~UV_WRITABLE;
  update(p);
}
void cleanup(void* privdata) {
  auto* p = static_cast<Events*>(privdata);
  p->context = nullptr;  // the context is being freed; the handle outlives it until closed
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle),
           [](uv_handle_t* h) { delete static_cast<Events*>(h->data); });
}

}  // namespace

int attach_uv(redisAsyncContext* ac, uv_loop_t* loop) {
  if (ac->ev.data != nullptr) return REDIS_ERR;
  auto* p = new Events{};
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    delete p;
    return REDIS_ERR;
  }
  p->context = ac;
  p->handle.data = p;
  ac->ev.addRead = &add_read;
  ac->ev.delRead = &del_read;
  ac->ev.addWrite = &add_write;
  ac->ev.delWrite = &del_write;
  ac->ev.cleanup = &cleanup;
  ac->ev.data = p;
  return REDIS_OK;
}

}  // namespace sagaflow::store::impl
