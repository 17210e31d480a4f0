#include "backend/file_l3.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <system_error>

#include "policy/assert.h"

namespace hcsim {

namespace {

std::uint64_t word_of(PageKey key, std::uint64_t i) {
  std::uint64_t z = key + 0x9e3779b97f4a7c15ULL * (i + 1);  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string hex(PageKey key) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(key));
  return buf;
}

}  // namespace

FileL3::FileL3(std::filesystem::path root, int ranks, std::int64_t kv_page_bytes, std::int64_t sidecar_bytes, bool remove_at_exit)
    : root_(std::move(root)), ranks_(ranks), kv_page_bytes_(kv_page_bytes), sidecar_bytes_(sidecar_bytes), remove_at_exit_(remove_at_exit) {
  HCSIM_ASSERT(ranks > 0 && kv_page_bytes >= 8 && kv_page_bytes % 8 == 0 && sidecar_bytes >= 8 && sidecar_bytes % 8 == 0);
  for (int r = 0; r < ranks; ++r) {
    std::filesystem::create_directories(root_ / ("rank" + std::to_string(r)) / "kv");
    std::filesystem::create_directories(root_ / ("rank" + std::to_string(r)) / "sidecar");
  }
}

FileL3::~FileL3() {
  if (!remove_at_exit_) return;
  std::error_code ec;  // a destructor does not throw; a leftover directory is only disk space
  std::filesystem::remove_all(root_, ec);
}

std::filesystem::path FileL3::path(int rank, bool sidecar, PageKey key) const {
  HCSIM_ASSERT(rank >= 0 && rank < ranks_);
  return root_ / ("rank" + std::to_string(rank)) / (sidecar ? "sidecar" : "kv") / (hex(key) + (sidecar ? ".state" : ".page"));
}

void FileL3::fill(PageKey key, std::span<std::byte> out) {
  for (std::size_t i = 0; i + 8 <= out.size(); i += 8) {
    const std::uint64_t w = word_of(key, i / 8);
    std::memcpy(out.data() + i, &w, 8);
  }
}

bool FileL3::holds(PageKey key, std::span<const std::byte> data) {
  // The first and the last word: a torn or misplaced object fails one of them.
  if (data.size() < 8) return false;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::memcpy(&first, data.data(), 8);
  const std::size_t last_at = (data.size() / 8 - 1) * 8;
  std::memcpy(&last, data.data() + last_at, 8);
  return first == word_of(key, 0) && last == word_of(key, last_at / 8);
}

bool FileL3::has_kv(int rank, PageKey key) const { return std::filesystem::exists(path(rank, false, key)); }
bool FileL3::has_sidecar(int rank, PageKey key) const { return std::filesystem::exists(path(rank, true, key)); }

bool FileL3::read(const std::filesystem::path& p, std::byte* dst, std::int64_t bytes, PageKey key) const {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::int64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd, dst + done, static_cast<std::size_t>(bytes - done), done);
    if (n <= 0) break;  // a stale (empty) or short object
    done += n;
  }
  ::close(fd);
  return done == bytes && holds(key, std::span<const std::byte>(dst, static_cast<std::size_t>(bytes)));
}

bool FileL3::write(const std::filesystem::path& p, const std::byte* src, std::int64_t bytes) {
  std::filesystem::path tmp = p;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::int64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::write(fd, src + done, static_cast<std::size_t>(bytes - done));
    if (n <= 0) break;
    done += n;
  }
  const bool ok = ::close(fd) == 0 && done == bytes;
  std::error_code ec;
  if (ok) std::filesystem::rename(tmp, p, ec);
  return ok && !ec;
}

bool FileL3::get_kv(int rank, PageKey key, std::byte* dst) const { return read(path(rank, false, key), dst, kv_page_bytes_, key); }
bool FileL3::get_sidecar(int rank, PageKey key, std::byte* dst) const { return read(path(rank, true, key), dst, sidecar_bytes_, key); }
bool FileL3::put_kv(int rank, PageKey key, const std::byte* src) { return write(path(rank, false, key), src, kv_page_bytes_); }
bool FileL3::put_sidecar(int rank, PageKey key, const std::byte* src) { return write(path(rank, true, key), src, sidecar_bytes_); }

void FileL3::put_stale_kv(int rank, PageKey key) { put_empty(path(rank, false, key)); }

void FileL3::put_stale_sidecar(int rank, PageKey key) { put_empty(path(rank, true, key)); }

void FileL3::put_empty(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create " + file.string());
  ::close(fd);
}

}  // namespace hcsim
