#pragma once
// hiredis <-> libuv glue. Replaces hiredis 0.14's adapters/libuv.h, which drops poll errors
// (`if (status != 0) return;`): libuv reports a refused or reset connection as a poll error
// (UV_EBADF) and stops the handle, so with the stock adapter hiredis never learns of it and
// the connection hangs until our timeout. Here an error runs the registered read/write
// handlers, so hiredis sees the socket error and disconnects at once (as hiredis >= 1.0 does).
//
// Writes: hiredis asks to be told when the socket is writable after every command it buffers.
// Once connected, the socket almost always is, and watching for it costs a loop turn and, as
// libuv re-arms a poll handle by removing the fd from epoll and adding it again, four
// epoll_ctl calls per write. So a connected context's buffered commands are written in the
// loop's next idle phase instead, all that the turn buffered in one write (an active idle
// handle also keeps the loop from blocking in its poll, wherever the write was asked for: a
// prepare handle started in a prepare callback would only run after that poll); only what the
// socket does not take at once (and a connect in progress) waits for writability.
#include <hiredis/async.h>
#include <uv.h>

namespace sagaflow::store::impl {

// REDIS_OK or REDIS_ERR; on success the context's events run on `loop`.
int attach_uv(redisAsyncContext* ac, uv_loop_t* loop);

}  // namespace sagaflow::store::impl
