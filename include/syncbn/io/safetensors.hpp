#pragma once
// safetensors files (https://github.com/huggingface/safetensors), the checkpoint format: an
// 8-byte little-endian header length N, N bytes of JSON header
//   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3],
//                                         "data_offsets": [begin, end]}, ...}
// then the data: C-order, little-endian, offsets relative to the start of the data section.
// Files written here load in Python with safetensors.torch.load_file / safetensors.numpy.
//
// On top of the format, syncbn keeps two entries in __metadata__:
//   "syncbn.format_version"  decimal; a reader refuses files newer than it understands.
//   "syncbn.crc32"           8 lowercase hex digits, zlib CRC-32 of the WHOLE FILE (length
//                            prefix, header, data) as it would read with these 8 digits set to
//                            "00000000". The header must spell the entry exactly
//                            "syncbn.crc32":"xxxxxxxx" (no spaces, no escapes) so a reader can
//                            find the digits; save_safetensors always does.
// Version 1 files (earlier syncbn) recorded the CRC-32 of the data section only; they are still
// read and checked that way, so their header is not protected. A version >= 2 file without a
// checksum is refused. Files from other writers (no syncbn.* entries) load unchecked.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "syncbn/tensor.hpp"

namespace syncbn::io {

using TensorMap = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

inline constexpr std::int64_t kSafetensorsFormatVersion = 2;
inline constexpr const char* kFormatVersionKey = "syncbn.format_version";
inline constexpr const char* kChecksumKey = "syncbn.crc32";
// Same limit as the reference implementation: larger headers are refused unparsed.
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

struct SafetensorsContents {
  TensorMap tensors;
  // Everything in __metadata__, including the syncbn.* entries.
  Metadata metadata;
};

// The exact bytes save_safetensors writes. Tensors are laid out in name order; the header is
// space-padded so the data starts 8-byte aligned. Throws ValueError when a tensor is undefined,
// a name or metadata string is not valid UTF-8, a name is "__metadata__", or `metadata` uses a
// "syncbn." key (those are written here).
std::string serialize_safetensors(const TensorMap& tensors, const Metadata& metadata = {});

// Writes atomically: temporary file in the same directory, fsync, rename over `path`, fsync of
// the directory. On failure `path` is left as it was (old contents or absent) and
// CheckpointError names it; argument errors are ValueError as for serialize_safetensors.
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const Metadata& metadata = {});

// A process killed during save_safetensors leaves its temporary "<path>.tmp.<pid>.<n>" behind.
// Removes those whose pid is this process or no live process on this host (a live one may be
// writing); nothing else is touched. Call before this process writes `path`. Returns what it
// removed.
std::vector<std::string> remove_stale_temporaries(const std::string& path);

// Reads and validates everything before returning; throws CheckpointError naming `path` and the
// defect: truncated file, header length past the end of the file or over 100 MB, malformed or
// non-UTF-8 JSON, duplicate keys, unknown fields, unsupported dtype, negative or overflowing
// shapes, data_offsets that do not match shape x dtype, overlap, leave holes or run past the
// data, checksum mismatch, a format version newer than kSafetensorsFormatVersion. Allocation is
// bounded by the file's size.
SafetensorsContents load_safetensors(const std::string& path);

// The same reader over bytes in memory; `origin` names them in error messages.
SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& origin);

// Every difference between a loaded state dict and the one a module expects (pass
// module.state_dict()), one readable line each, in key order: keys missing from `loaded`, keys
// `expected` does not have, and shape or dtype mismatches. Empty when they agree.
std::vector<std::string> state_dict_mismatches(const TensorMap& loaded, const TensorMap& expected);

}  // namespace syncbn::io
