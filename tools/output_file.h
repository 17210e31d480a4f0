// Writing what hcsim produces so that a failure is reported, never half-done: a whole file goes to
// a temporary name beside it (PATH.tmp.PID) and is renamed over PATH only once every write, the
// fsync and the close succeeded, so PATH holds the old file or the new one, nothing between. Every
// failure (a full disk, `ulimit -f`, a missing folder, a path that is a folder) throws OutputError
// naming the file; the temporary file is removed. "-" is standard output.
//
//   write_file_atomically("results/hang.svg", svg);
//   -> OutputError "results/hang.svg: cannot write: No space left on device"
//   -> OutputError "nowhere/hang.svg: cannot write: no such folder 'nowhere' (create it first)"
//
//   AtomicOutput out("results/run.trace.json");   // a large output, streamed to the temporary file
//   write_trace(out.stream(), header, log);
//   out.commit();                                 // or, destroyed without commit: nothing changes
//
//   OutputLock lock("results/seed-family", "sweep");   // PREFIX.lock, held until destroyed
//   -> OutputError "results/seed-family: in use by another hcsim (pid 4242, hcsim sweep, started
//      2026-03-01 10:22:05 UTC): wait for it or choose another -o"
//
// Writes past `ulimit -f` raise SIGXFSZ, which kills the process unless ignored; hcsim's main
// ignores it, so such a write fails with EFBIG and is reported like any other.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hcsim {

// An output that could not be written: the message starts with the file. Exit code 2 in hcsim.
struct OutputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// How messages name "-".
inline constexpr const char* kStandardOutput = "(standard output)";

// Creates the folders above `path` that are missing ("-" and a bare file name need none); throws
// OutputError naming `path` when one cannot be made (a file in the way, permissions).
void ensure_parent_folder(const std::string& path);

// `content` as the whole of `path`, atomically (see above). A path that exists and is not a
// regular file (a device such as /dev/null, a FIFO) is written in place: it cannot be replaced.
void write_file_atomically(const std::string& path, std::string_view content);

// A whole file written through a stream to PATH.tmp.PID; commit() makes it PATH. Destroyed without
// commit(), it removes the temporary file and PATH is untouched. The first failed write is kept
// and thrown by commit() (later writes are dropped), so a full disk ends in one clear error.
class AtomicOutput {
 public:
  explicit AtomicOutput(const std::string& path);  // throws OutputError if the temporary file cannot be made
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  std::ostream& stream();
  void write(std::string_view bytes) { stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size())); }
  template <typename T>
  AtomicOutput& operator<<(const T& value) {
    stream() << value;
    return *this;
  }
  // Flushes, fsyncs, closes and renames; throws OutputError naming the path on any failure (the
  // temporary file is then removed). Called at most once.
  void commit();
  const std::string& path() const { return path_; }

 private:
  class Buffer;
  std::string path_;
  std::string target_;     // the file renamed over: the path, or the regular file a symbolic link names
  std::string temp_path_;  // empty when writing in place (standard output, a device, a link to one)
  std::unique_ptr<Buffer> buffer_;
  std::unique_ptr<std::ostream> stream_;
  bool committed_ = false;
};

// An exclusive claim on an output prefix for one process: a non-blocking flock(2) on PREFIX.lock,
// which holds "pid N, hcsim COMMAND, started TIME" for whoever finds it taken. The kernel drops the
// flock when the process ends, however it ends, so a lock file left by a killed process is simply
// taken over. Destruction releases it and removes the file.
class OutputLock {
 public:
  // `command`: what holds it, e.g. "sweep" or "merge". Throws OutputError naming the prefix and the
  // holder when another process (or another OutputLock in this one) holds it, or when PREFIX.lock
  // cannot be created.
  OutputLock(const std::string& prefix, const std::string& command);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Who holds PREFIX.lock, if a live process does: its text ("pid N, hcsim sweep, started TIME").
// Creates nothing, so it can look at inputs (a shard still being written) in read-only folders.
std::optional<std::string> output_holder(const std::string& prefix);

}  // namespace hcsim
