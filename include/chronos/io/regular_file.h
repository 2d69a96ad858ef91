// Opening input files that must be regular files. Model files, configs, manifests, tokenizers and
// data are untrusted: a FIFO or a character device where one is expected would block a plain open()
// or read() forever. These open with O_NONBLOCK (which never blocks on a FIFO), check the file type
// with fstat, and only then read.
#pragma once

#include <string>

namespace chronos {

// A read-only descriptor of `path` (O_CLOEXEC, blocking reads), which the caller closes. Throws
// IoError naming the path and the cause: missing or unreadable (errno), a directory, a FIFO, a
// device, a socket.
int open_regular_file(const std::string& path);

// The whole contents of the regular file `path` (open_regular_file's errors; IoError on a failed read).
std::string read_regular_file(const std::string& path);

// Throws open_regular_file's IoError unless `path` names a regular file: for readers that open the
// path through another library (std::ifstream) afterwards.
void require_regular_file(const std::string& path);

}  // namespace chronos
