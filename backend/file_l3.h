// FileL3: L3 as files on local disk, one object per page hash and rank, as upstream's file
// backend stores them: <root>/rank<R>/kv/<hash>.page and <root>/rank<R>/sidecar/<hash>.state.
// Page contents are derived from the key, so every read can be checked. A stale page is an
// object whose data is gone (an empty file): existence checks find it, reads of it fail.
//
//   FileL3 l3("/tmp/hcsim-l3-1234", 2, 64 * 1024, 64 * 1024);
//   l3.put_kv(0, key, page);  l3.has_kv(0, key);  l3.get_kv(0, key, slot_memory);
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "policy/runtime.h"

namespace hcsim {

class FileL3 {
 public:
  // Creates the directories; `remove_at_exit`: the destructor deletes `root` and everything in it.
  FileL3(std::filesystem::path root, int ranks, std::int64_t kv_page_bytes, std::int64_t sidecar_bytes, bool remove_at_exit);
  ~FileL3();
  FileL3(const FileL3&) = delete;
  FileL3& operator=(const FileL3&) = delete;

  const std::filesystem::path& root() const { return root_; }
  std::int64_t kv_page_bytes() const { return kv_page_bytes_; }
  std::int64_t sidecar_bytes() const { return sidecar_bytes_; }

  bool has_kv(int rank, PageKey key) const;
  bool has_sidecar(int rank, PageKey key) const;
  // Reads the object into `dst` (kv_page_bytes / sidecar_bytes long); false if it is missing,
  // stale, short or does not hold the key's contents.
  bool get_kv(int rank, PageKey key, std::byte* dst) const;
  bool get_sidecar(int rank, PageKey key, std::byte* dst) const;
  // Writes the object atomically (a temporary file renamed into place); false on an I/O error.
  bool put_kv(int rank, PageKey key, const std::byte* src);
  bool put_sidecar(int rank, PageKey key, const std::byte* src);
  void put_stale_kv(int rank, PageKey key);
  // The same for a sidecar object: found by has_sidecar, failed by get_sidecar.
  void put_stale_sidecar(int rank, PageKey key);

  // The contents the object of `key` holds: 64-bit words derived from the key.
  static void fill(PageKey key, std::span<std::byte> out);
  static bool holds(PageKey key, std::span<const std::byte> data);

 private:
  static void put_empty(const std::filesystem::path& file);  // an empty file: present, never readable
  std::filesystem::path path(int rank, bool sidecar, PageKey key) const;
  bool read(const std::filesystem::path& p, std::byte* dst, std::int64_t bytes, PageKey key) const;
  bool write(const std::filesystem::path& p, const std::byte* src, std::int64_t bytes);

  std::filesystem::path root_;
  int ranks_;
  std::int64_t kv_page_bytes_;
  std::int64_t sidecar_bytes_;
  bool remove_at_exit_;
};

}  // namespace hcsim
