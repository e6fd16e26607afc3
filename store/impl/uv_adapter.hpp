#pragma once
// hiredis <-> libuv glue. Replaces hiredis 0.14's adapters/libuv.h, which drops poll errors
// (`if (status != 0) return;`): libuv reports a refused or reset connection as a poll error
// (UV_EBADF) and stops the handle, so with the stock adapter hiredis never learns of it and
// the connection hangs until our timeout. Here an error runs the registered read/write
// handlers, so hiredis sees the socket error and disconnects at once (as hiredis >= 1.0 does).
#include <hiredis/async.h>
#include <uv.h>

namespace sagaflow::store::impl {

// REDIS_OK or REDIS_ERR; on success the context's events run on `loop`.
int attach_uv(redisAsyncContext* ac, uv_loop_t* loop);

}  // namespace sagaflow::store::impl
