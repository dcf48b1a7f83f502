#include "syncbn/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "atomic_file.hpp"
#include "json.hpp"
#include "safetensors_header.hpp"
#include "syncbn/error.hpp"

namespace syncbn::io {
namespace {

// zlib takes 32-bit lengths; feed it in pieces.
std::uint32_t crc_update(std::uint32_t crc, const void* data, std::size_t size) {
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {
    const auto n = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
    crc = static_cast<std::uint32_t>(crc32(crc, p, n));
    p += n;
    size -= n;
  }
  return crc;
}

std::string hex32(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

void check_inputs(const TensorMap& tensors, const Metadata& metadata) {
  for (const auto& [name, t] : tensors) {
    SYNCBN_CHECK(t.defined(), "safetensors: tensor '", name, "' is undefined");
    SYNCBN_CHECK(name != "__metadata__", "safetensors: '__metadata__' is not a valid tensor name");
    SYNCBN_CHECK(json::is_valid_utf8(name), "safetensors: tensor name is not valid UTF-8");
  }
  for (const auto& [key, value] : metadata) {
    SYNCBN_CHECK(json::is_valid_utf8(key) && json::is_valid_utf8(value),
                 "safetensors: metadata entry '", key, "' is not valid UTF-8");
    SYNCBN_CHECK(key.rfind("syncbn.", 0) != 0, "safetensors: metadata key '", key,
                 "' is reserved (syncbn.* entries are written by save_safetensors)");
  }
}

// The checksum covers the whole file, its own 8 hex digits read as '0': the header carries a
// checkpoint's position, so an edit there must be caught as surely as one in the data.
constexpr const char* kChecksumPlaceholder = "00000000";

// Where the checksum's hex digits sit in `header`, or npos. A JSON string cannot contain an
// unescaped '"', so `{"syncbn.crc32":"` or `,"syncbn.crc32":"` only ever occurs as a real
// member; the parser has already refused duplicate keys, so one match is the one.
std::size_t checksum_digits_at(std::string_view header, std::string_view recorded) {
  const std::string needle =
      std::string("\"") + kChecksumKey + "\":\"" + std::string(recorded) + "\"";
  for (std::size_t at = header.find(needle); at != std::string_view::npos;
       at = header.find(needle, at + 1))
    if (at > 0 && (header[at - 1] == '{' || header[at - 1] == ',')) return at + needle.size() - 9;
  return std::string_view::npos;
}

std::string length_prefix(std::uint64_t n) {
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>(n >> (8 * i));
  return prefix;
}

// Validates the arguments, adds the syncbn.* entries and returns the header text.
std::string make_header(const TensorMap& tensors, const Metadata& metadata) {
  check_inputs(tensors, metadata);
  Metadata full = metadata;
  full[kFormatVersionKey] = std::to_string(kSafetensorsFormatVersion);
  full[kChecksumKey] = kChecksumPlaceholder;
  std::string header = detail::build_header(tensors, full);
  const std::string prefix = length_prefix(header.size());
  std::uint32_t crc = crc_update(crc_update(0, nullptr, 0), prefix.data(), prefix.size());
  crc = crc_update(crc, header.data(), header.size());
  for (const auto& [name, t] : tensors) crc = crc_update(crc, t.raw(), t.nbytes());
  header.replace(checksum_digits_at(header, kChecksumPlaceholder), 8, hex32(crc));
  return header;
}

void emit(const TensorMap& tensors, const std::string& header, const detail::ByteSink& sink) {
  const std::string prefix = length_prefix(header.size());
  sink(prefix.data(), prefix.size());
  sink(header.data(), header.size());
  for (const auto& [name, t] : tensors)
    if (t.nbytes() > 0) sink(t.raw(), t.nbytes());
}

// Random access to the bytes being read: a file (pread) or memory (fuzzers, tests).
class Source {
 public:
  virtual ~Source() = default;
  virtual std::uint64_t size() const = 0;
  // Exactly `n` bytes at `offset`; throws CheckpointError otherwise.
  virtual void read(std::uint64_t offset, void* dst, std::size_t n) const = 0;
};

class MemorySource : public Source {
 public:
  explicit MemorySource(const std::string& bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size(); }
  void read(std::uint64_t offset, void* dst, std::size_t n) const override {
    if (n > 0) std::memcpy(dst, bytes_.data() + offset, n);
  }

 private:
  const std::string& bytes_;
};

class FileSource : public Source {
 public:
  explicit FileSource(const std::string& path) : path_(path) {
    // O_NONBLOCK: opening a FIFO must not hang; it is rejected as not regular below.
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) throw CheckpointError("cannot open '" + path + "': " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw CheckpointError("'" + path + "' is not a regular file");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  ~FileSource() override { ::close(fd_); }
  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, void* dst, std::size_t n) const override {
    auto* p = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t got =
          ::pread(fd_, p, std::min<std::size_t>(n, 1u << 30), static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw CheckpointError(path_ + ": read failed: " + std::strerror(errno));
      if (got == 0) throw CheckpointError(path_ + ": file shrank while being read (truncated)");
      p += got, offset += static_cast<std::uint64_t>(got), n -= static_cast<std::size_t>(got);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// The format version, 1 when the file does not say (version-1 files and other writers').
std::uint64_t check_version(const Metadata& metadata, const std::string& origin) {
  const auto it = metadata.find(kFormatVersionKey);
  if (it == metadata.end()) return 1;
  json::Value number{json::Value::Kind::Number, false, it->second, {}, {}};
  const auto version = json::as_uint64(number);
  if (!version || *version == 0)
    throw CheckpointError(origin + ": malformed " + kFormatVersionKey + " '" + it->second + "'");
  if (*version > static_cast<std::uint64_t>(kSafetensorsFormatVersion))
    throw CheckpointError(origin + ": written by a newer syncbn (format version " + it->second +
                          ", this build reads up to " + std::to_string(kSafetensorsFormatVersion) +
                          ")");
  return *version;
}

// What the recorded checksum covers, and the CRC-32 of the part before the data section.
struct ChecksumStart {
  std::string recorded;
  bool whole_file = false;  // version >= 2; version 1 covered the data section only
  std::uint32_t crc = 0;
};

// nullopt when there is nothing to check: a file from another writer (no syncbn entries).
std::optional<ChecksumStart> checksum_start(const Metadata& metadata, std::uint64_t version,
                                            const unsigned char* prefix, std::string header,
                                            const std::string& origin) {
  const auto it = metadata.find(kChecksumKey);
  if (it == metadata.end()) {
    if (version < 2) return std::nullopt;
    throw CheckpointError(origin + ": format version " + std::to_string(version) + " but no " +
                          kChecksumKey + " entry (header edited?)");
  }
  ChecksumStart start{it->second, version >= 2, crc_update(0, nullptr, 0)};
  if (start.recorded.size() != 8 ||
      start.recorded.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw CheckpointError(origin + ": malformed " + kChecksumKey + " '" + start.recorded + "'");
  if (!start.whole_file) return start;
  const std::size_t digits = checksum_digits_at(header, start.recorded);
  if (digits == std::string::npos)
    throw CheckpointError(origin + ": cannot verify the checksum: the header must spell it " +
                          json::quote(kChecksumKey) + ":" + json::quote(start.recorded) +
                          " (no spaces or escapes)");
  header.replace(digits, 8, kChecksumPlaceholder);
  start.crc = crc_update(crc_update(start.crc, prefix, 8), header.data(), header.size());
  return start;
}

void check_checksum(const ChecksumStart& start, std::uint32_t actual, const std::string& origin) {
  if (start.recorded != hex32(actual))
    throw CheckpointError(origin +
                          ": checksum mismatch: " + (start.whole_file ? "file" : "data section") +
                          " CRC-32 is " + hex32(actual) + ", the header records " + start.recorded +
                          " (file corrupted or edited)");
}

SafetensorsContents read_all(const Source& src, const std::string& origin) {
  const std::uint64_t file_size = src.size();
  if (file_size < 8)
    throw CheckpointError(origin + ": truncated: " + std::to_string(file_size) +
                          " bytes, a safetensors file starts with an 8-byte header length");
  unsigned char prefix[8];
  src.read(0, prefix, 8);
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | prefix[i];
  if (header_len > kMaxSafetensorsHeader)
    throw CheckpointError(origin + ": header length " + std::to_string(header_len) +
                          " exceeds the limit of " + std::to_string(kMaxSafetensorsHeader));
  if (header_len > file_size - 8)
    throw CheckpointError(origin + ": header length " + std::to_string(header_len) +
                          " runs past the end of the file (" + std::to_string(file_size - 8) +
                          " bytes follow; truncated?)");
  std::string text(header_len, '\0');
  src.read(8, text.data(), text.size());
  const std::uint64_t data_start = 8 + header_len;
  detail::Header header = detail::parse_header(text, file_size - data_start, origin);
  const std::uint64_t version = check_version(header.metadata, origin);
  const auto checksum = checksum_start(header.metadata, version, prefix, text, origin);
  SafetensorsContents out;
  std::uint32_t crc = checksum ? checksum->crc : 0;
  // Entries tile the data section in order, so this is the CRC of the section as stored.
  for (const detail::TensorEntry& e : header.entries) {
    Tensor t(e.shape, e.dtype);
    if (t.nbytes() > 0) src.read(data_start + e.begin, t.raw(), t.nbytes());
    crc = crc_update(crc, t.raw(), t.nbytes());
    out.tensors.emplace(e.name, std::move(t));
  }
  if (checksum) check_checksum(*checksum, crc, origin);
  out.metadata = std::move(header.metadata);
  return out;
}

}  // namespace

std::string serialize_safetensors(const TensorMap& tensors, const Metadata& metadata) {
  const std::string header = make_header(tensors, metadata);
  std::string out;
  emit(tensors, header, [&out](const void* data, std::size_t size) {
    out.append(static_cast<const char*>(data), size);
  });
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  const std::string header = make_header(tensors, metadata);
  detail::write_file_atomically(path,
                                [&](const detail::ByteSink& sink) { emit(tensors, header, sink); });
}

std::vector<std::string> remove_stale_temporaries(const std::string& path) {
  return detail::remove_stale_temporaries(path);
}

SafetensorsContents load_safetensors(const std::string& path) {
  return read_all(FileSource(path), path);
}

SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& origin) {
  return read_all(MemorySource(bytes), origin);
}

}  // namespace syncbn::io
