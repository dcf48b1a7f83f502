#pragma once
// Crash-safe file replacement (POSIX): readers of `path` see either the old file or the complete
// new one, never a mix, and after a successful return the new file survives a power loss.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace syncbn::io::detail {

// Appends bytes to the file being written; throws CheckpointError when the write fails.
using ByteSink = std::function<void(const void* data, std::size_t size)>;

// Writes what `produce` emits to a new temporary file in the directory of `path`, fsyncs it,
// renames it over `path` and fsyncs the directory. On any failure the temporary file is removed,
// `path` keeps its old contents, and CheckpointError (naming `path` and the OS error) is thrown;
// an exception thrown by `produce` propagates after the same clean-up.
void write_file_atomically(const std::string& path,
                           const std::function<void(const ByteSink&)>& produce);

// A process killed mid-write (SIGKILL, OOM killer) leaves its temporary `<path>.tmp.<pid>.<n>`
// behind, as large as the file. Removes those whose pid is this process (call before writing)
// or no live process on this host; a live pid may be a writer, so its file stays. Other files are
// never touched. Returns the paths removed. Best effort: a file that cannot be removed stays.
std::vector<std::string> remove_stale_temporaries(const std::string& path);

}  // namespace syncbn::io::detail
