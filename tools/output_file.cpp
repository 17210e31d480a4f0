#include "tools/output_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <streambuf>
#include <system_error>
#include <vector>

namespace hcsim {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kBufferBytes = std::size_t{1} << 16;
constexpr int kLockAttemptsMax = 100;
constexpr std::size_t kLockTextBytesMax = 512;

std::string error_text(int error) {
  std::string text = std::strerror(error);
  if (error == EFBIG) text += " (the file size limit, ulimit -f?)";
  return text;
}

std::string name_of(const std::string& path) { return path == "-" ? std::string(kStandardOutput) : path; }

[[noreturn]] void fail_write(const std::string& path, int error) { throw OutputError(name_of(path) + ": cannot write: " + error_text(error)); }

// Why opening a file under `path`'s folder failed with ENOENT or ENOTDIR: the folder, named.
[[noreturn]] void fail_open(const std::string& path, int error) {
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if ((error == ENOENT || error == ENOTDIR) && !parent.empty() && !fs::is_directory(parent, ec)) {
    throw OutputError(path + ": cannot write: no such folder '" + parent.string() + "' (create it first)");
  }
  fail_write(path, error);
}

// Every byte of `bytes` to `fd`, or the errno of the write that failed.
int write_all(int fd, const char* bytes, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {  // bounded: each pass writes at least one byte or returns
    const ssize_t n = ::write(fd, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

// The holder's line from a lock file, printable, or a note that it has none yet.
std::string holder_text(int fd, const std::string& lock_path) {
  // The holder writes its line just after taking the lock: give it a moment (at most ~0.1 s).
  std::string holder;
  for (int attempt = 0; attempt < 20 && holder.empty(); ++attempt) {
    if (attempt > 0) ::usleep(5'000);
    holder.assign(kLockTextBytesMax, '\0');
    const ssize_t n = ::pread(fd, holder.data(), holder.size(), 0);
    holder.resize(static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  }
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\r')) holder.pop_back();
  for (char& c : holder) c = (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return holder.empty() ? "its lock file " + lock_path + " names no holder yet" : holder;
}

}  // namespace

void ensure_parent_folder(const std::string& path) {
  if (path == "-") return;
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  if (fs::is_directory(parent, ec)) return;
  fs::create_directories(parent, ec);
  if (ec || !fs::is_directory(parent, ec)) {
    throw OutputError(path + ": cannot create its folder '" + parent.string() + "': " + (ec ? ec.message() : std::string("a file is in the way")));
  }
}

// A stream buffer over a file descriptor that keeps the first error instead of throwing: an
// ostream swallows exceptions from its buffer, so commit() reports it.
class AtomicOutput::Buffer : public std::streambuf {
 public:
  explicit Buffer(int fd) : fd_(fd), bytes_(kBufferBytes) { setp(bytes_.data(), bytes_.data() + bytes_.size()); }
  int fd() const { return fd_; }
  int error() const { return error_; }
  // Writes what is buffered; false (and error() set) on failure.
  bool drain() {
    if (error_ != 0) return false;
    const auto size = static_cast<std::size_t>(pptr() - pbase());
    setp(bytes_.data(), bytes_.data() + bytes_.size());
    error_ = write_all(fd_, bytes_.data(), size);
    return error_ == 0;
  }
  int close_fd() {
    if (fd_ < 0) return 0;
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }
  ~Buffer() override { close_fd(); }

 protected:
  int_type overflow(int_type c) override {
    if (!drain()) return traits_type::eof();
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    *pptr() = traits_type::to_char_type(c);
    pbump(1);
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (error_ != 0) return 0;
    if (n <= epptr() - pptr()) {
      std::memcpy(pptr(), s, static_cast<std::size_t>(n));
      pbump(static_cast<int>(n));
      return n;
    }
    if (!drain()) return 0;
    error_ = write_all(fd_, s, static_cast<std::size_t>(n));  // large pieces go straight out
    return error_ == 0 ? n : 0;
  }
  int sync() override { return drain() ? 0 : -1; }

 private:
  int fd_;
  int error_ = 0;
  std::vector<char> bytes_;
};

namespace {

// The descriptor of this process that `path` (or the link `link_to`) names: /dev/stdout,
// /dev/stderr, /dev/fd/N, /proc/self/fd/N; else -1.
int descriptor_named(const std::string& path, const std::string& link_to) {
  for (const std::string& p : {path, link_to}) {
    if (p == "/dev/stdout") return 1;
    if (p == "/dev/stderr") return 2;
    for (const std::string_view prefix : {"/dev/fd/", "/proc/self/fd/"}) {
      if (!p.starts_with(prefix) || p.size() == prefix.size() || p.size() > prefix.size() + 6) continue;
      const std::string digits = p.substr(prefix.size());
      if (digits.find_first_not_of("0123456789") == std::string::npos) return std::stoi(digits);
    }
  }
  return -1;
}

}  // namespace

AtomicOutput::AtomicOutput(const std::string& path) : path_(path) {
  if (path.empty()) throw OutputError("an output file name is empty");
  if (path == "-") return;  // std::cout
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) throw OutputError(path + ": cannot write: it is a folder; expected a file name");
  // A symbolic link stays one: a regular file it names is replaced, anything else is written through it.
  struct stat link {};
  const bool is_link = ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode);
  std::error_code ec;
  // /dev/stdout and /proc/self/fd/N name an open file of this process: write through them, or
  // what else goes to that descriptor would land in a replaced file's orphaned copy.
  const std::string link_to = is_link ? fs::read_symlink(path, ec).string() : std::string();
  const bool open_descriptor = path.starts_with("/dev/") || path.starts_with("/proc/") || link_to.starts_with("/proc/");
  if (is_link && exists && S_ISREG(st.st_mode) && !open_descriptor) target_ = fs::canonical(path, ec).string();
  if (ec) target_.clear();
  int fd = -1;
  if (const int own = descriptor_named(path, link_to); own >= 0) {
    // This process's own descriptor: write at its offset, after what was printed to it already.
    std::cout.flush();
    std::fflush(nullptr);
    fd = ::dup(own);
    if (fd < 0) fail_write(path, errno);
  } else if ((exists && !S_ISREG(st.st_mode)) || (is_link && target_.empty())) {
    // A device or a FIFO (/dev/null, /dev/stdout, a pipe): it cannot be replaced, only written to.
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);  // O_CREAT: a dangling link makes its file
    if (fd < 0) fail_write(path, errno);
  } else {
    if (target_.empty()) target_ = path;
    temp_path_ = target_ + ".tmp." + std::to_string(::getpid());
    fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) fail_open(path, errno);
    if (exists) (void)::fchmod(fd, st.st_mode & 07777);  // the new file keeps the old one's permissions
  }
  buffer_ = std::make_unique<Buffer>(fd);
  stream_ = std::make_unique<std::ostream>(buffer_.get());
}

AtomicOutput::~AtomicOutput() {
  if (committed_) return;
  buffer_.reset();  // closes without writing what is buffered
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

std::ostream& AtomicOutput::stream() { return stream_ ? *stream_ : std::cout; }

void AtomicOutput::commit() {
  if (committed_) throw OutputError(name_of(path_) + ": committed twice");
  committed_ = true;
  if (!stream_) {
    std::cout.flush();
    if (!std::cout.good() || std::fflush(stdout) != 0 || std::ferror(stdout)) fail_write(path_, errno != 0 ? errno : EIO);
    return;
  }
  const auto fail = [&](int error) {
    buffer_->close_fd();
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
    fail_write(path_, error);
  };
  stream_->flush();
  if (!buffer_->drain() || !stream_->good()) fail(buffer_->error() != 0 ? buffer_->error() : EIO);
  if (!temp_path_.empty() && ::fsync(buffer_->fd()) != 0) fail(errno);
  if (const int error = buffer_->close_fd(); error != 0) fail(error);
  if (temp_path_.empty()) return;
  if (::rename(temp_path_.c_str(), target_.c_str()) != 0) fail(errno);
  // The rename itself on disk: best effort, as some file systems cannot sync a folder.
  const fs::path parent = fs::path(target_).parent_path();
  const int dir = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

void write_file_atomically(const std::string& path, std::string_view content) {
  AtomicOutput out(path);
  out.write(content);
  out.commit();
}

OutputLock::OutputLock(const std::string& prefix, const std::string& command) : path_(prefix + ".lock") {
  for (int attempt = 0; attempt < kLockAttemptsMax; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int error = errno;
      const fs::path parent = fs::path(path_).parent_path();
      std::error_code ec;
      if ((error == ENOENT || error == ENOTDIR) && !parent.empty() && !fs::is_directory(parent, ec)) {
        throw OutputError(prefix + ": cannot write: no such folder '" + parent.string() + "' (create it first)");
      }
      throw OutputError(prefix + ": cannot create its lock file " + path_ + ": " + error_text(error));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      const std::string holder = error == EWOULDBLOCK ? holder_text(fd, path_) : "";
      ::close(fd);
      if (error != EWOULDBLOCK) throw OutputError(prefix + ": cannot lock " + path_ + ": " + error_text(error));
      throw OutputError(prefix + ": in use by another hcsim (" + holder + "): wait for it or choose another -o");
    }
    // The holder before us removes the file as it lets go: hold the lock of the file at the path.
    struct stat held {}, named {};
    if (::fstat(fd, &held) != 0 || ::stat(path_.c_str(), &named) != 0 || held.st_ino != named.st_ino || held.st_dev != named.st_dev) {
      ::close(fd);
      continue;
    }
    fd_ = fd;
    // Who holds it, for whoever finds it taken; the lock holds whether or not this text is written.
    const std::string text = "pid " + std::to_string(::getpid()) + ", hcsim " + command + ", started " + utc_now() + "\n";
    if (::ftruncate(fd_, 0) == 0) (void)write_all(fd_, text.data(), text.size());
    return;
  }
  throw OutputError(prefix + ": cannot take its lock file " + path_ + ": it was replaced " + std::to_string(kLockAttemptsMax) + " times in a row");
}

OutputLock::~OutputLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still held: a process that opened it before sees it replaced and retries
  ::close(fd_);
}

std::optional<std::string> output_holder(const std::string& prefix) {
  const std::string path = prefix + ".lock";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> holder;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
  } else if (errno == EWOULDBLOCK) {
    holder = holder_text(fd, path);
  }
  ::close(fd);
  return holder;
}

}  // namespace hcsim
