#pragma once
// The console's static files (app/console/static/), embedded at build time
// (embed_assets.cmake): no CDN, nothing fetched at build or run time.
#include <string_view>

namespace sagaflow::app::console {

// The file's bytes; empty when there is no such file.
std::string_view asset(std::string_view name) noexcept;

}  // namespace sagaflow::app::console
