// The web UI's page (web/index.html), compiled into the executable by cmake/EmbedFile.cmake.
#pragma once

#include <string_view>

namespace chronos::tools {

std::string_view web_ui_page();

}  // namespace chronos::tools
