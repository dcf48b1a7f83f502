#include "atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "syncbn/error.hpp"

namespace syncbn::io::detail {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw CheckpointError("cannot write '" + path + "': " + what + ": " + std::strerror(err));
}

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string temporary_prefix(const std::string& target) {
  return target + ".tmp.";
}

// The writer's pid if `suffix` (what follows "<target>.tmp.") is "<pid>.<n>", else 0.
pid_t writer_of(const std::string& suffix) {
  const auto dot = suffix.find('.');
  const auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (dot == std::string::npos || !digits(suffix.substr(0, dot)) || !digits(suffix.substr(dot + 1)))
    return 0;
  return static_cast<pid_t>(std::stol(suffix.substr(0, dot)));
}

bool is_stale(pid_t writer) {
  if (writer == ::getpid()) return true;
  return ::kill(writer, 0) != 0 && errno == ESRCH;  // EPERM: alive, someone else's
}

// Owns the temporary file until it is renamed; removes it if anything goes wrong before then.
class TempFile {
 public:
  explicit TempFile(const std::string& target) : target_(target) {
    static std::atomic<unsigned> counter{0};
    // O_EXCL with a per-process, per-call name: never clobbers another writer's temporary, and
    // the mode is 0666 less the umask, as for any file the user creates.
    for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
      name_ =
          temporary_prefix(target) + std::to_string(::getpid()) + "." + std::to_string(counter++);
      fd_ = ::open(name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && errno != EEXIST)
        fail(target_, "cannot create temporary '" + name_ + "'", errno);
    }
    if (fd_ < 0) fail(target_, "no free temporary name", EEXIST);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(name_.c_str());
  }

  void write(const void* data, std::size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t n = ::write(fd_, p, size);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(target_, "write failed", errno);
      if (n == 0) fail(target_, "write made no progress", EIO);
      p += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  void commit() {
    if (::fsync(fd_) != 0) fail(target_, "fsync failed", errno);
    const int fd = fd_;
    fd_ = -1;
    // close() can report a deferred write error (NFS); the data is not safe if it does.
    if (::close(fd) != 0) fail(target_, "close failed", errno);
    if (std::rename(name_.c_str(), target_.c_str()) != 0) fail(target_, "rename failed", errno);
    committed_ = true;
  }

 private:
  std::string target_;
  std::string name_;
  int fd_ = -1;
  bool committed_ = false;
};

// The rename is only durable once the directory entry itself reaches the disk.
void sync_directory(const std::string& path) {
  const std::string dir = directory_of(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(path, "replaced, but cannot open directory '" + dir + "' to sync it", errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(path, "replaced, but syncing directory '" + dir + "' failed", err);
}

}  // namespace

void write_file_atomically(const std::string& path,
                           const std::function<void(const ByteSink&)>& produce) {
  {
    TempFile temp(path);
    produce([&temp](const void* data, std::size_t size) { temp.write(data, size); });
    temp.commit();
  }
  sync_directory(path);
}

std::vector<std::string> remove_stale_temporaries(const std::string& path) {
  const std::string dir = directory_of(path);
  const std::string prefix = temporary_prefix(path.substr(path.find_last_of('/') + 1));
  std::vector<std::string> removed;
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return removed;  // no directory, no temporaries
  while (const dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const pid_t writer = writer_of(name.substr(prefix.size()));
    const std::string full = dir + "/" + name;
    if (writer > 0 && is_stale(writer) && ::unlink(full.c_str()) == 0) removed.push_back(full);
  }
  ::closedir(listing);
  return removed;
}

}  // namespace syncbn::io::detail
