#include "tools/sweep.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "policy/variant.h"
#include "policy/assert.h"
#include "run/input_file.h"
#include "run/json_node.h"
#include "run/line_reader.h"
#include "tools/run_metrics.h"
#include "run/scenario.h"
#include "sim/seed_sweep.h"
#include "tools/output_file.h"
#include "tools/progress.h"

namespace hcsim {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr const char* kFormat = "hcsim-sweep";
// Results format history (docs/sweep-format.md):
// 2: tokens_lost (registered minus committed) became l3_lost_tokens (agreed L3 hits not published).
// 3: the header left the first line of PREFIX.jsonl for PREFIX.grid.json, so every line of the
//    JSON Lines file is a row; the CSV's digest cells are quoted.
static_assert(kSweepFormatVersion == 3);
constexpr std::size_t kFlushBytes = 1 << 20;
constexpr auto kFlushEvery = std::chrono::milliseconds(200);
// A row holds its point's axis values, each at most a grid's size (4 MiB), and a few numbers.
constexpr std::size_t kRowBytesMax = std::size_t{8} << 20;
constexpr std::int64_t kGridHeaderBytesMax = 4 << 20;
constexpr std::int64_t kRunsMax = std::int64_t{1} << 40;  // as tools/sweep_grid.cpp bounds a grid
constexpr std::int64_t kIntMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kIntMin = std::numeric_limits<std::int64_t>::min();

std::string hex64(std::uint64_t v) {
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = "0123456789abcdef"[v & 0xf];
  return out;
}

// A CSV cell: quoted when it must be (a comma, a quote, a line break) or when asked.
std::string csv_cell(const std::string& s, bool quote = false) {
  if (!quote && s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

class CsvLine {
 public:
  CsvLine& add(const std::string& cell, bool quote = false) {
    if (cells_++ > 0) text_.push_back(',');
    text_.append(csv_cell(cell, quote));
    return *this;
  }
  std::string line() const { return text_ + "\n"; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  int cells_ = 0;
};

std::vector<std::string> csv_columns(const SweepGrid& g, bool wall_time) {
  std::vector<std::string> cols{"run", "seed"};
  for (const SweepAxis& a : g.axes) {
    if (a.name != "variant") cols.push_back(a.name);  // the variant has its own column
  }
  for (const char* c : {"variant", "policy", "tp", "pp", "page_size", "verdict", "hang", "violated", "requests", "scheduled", "starved",
                        "sched_p50_us", "sched_p99_us", "tokens_loaded", "l3_lost_tokens", "kv_bytes_discarded", "events", "end_us", "digest"}) {
    cols.emplace_back(c);
  }
  if (wall_time) cols.emplace_back("wall_us");
  return cols;
}

std::string csv_header_of(const SweepGrid& g, bool wall_time) {
  CsvLine line;
  for (const std::string& c : csv_columns(g, wall_time)) line.add(c);
  return line.line();
}

// PREFIX.grid.json: what the rows belong to. A shard's names its shard; the merge drops it.
struct GridHeader {
  std::string grid_digest;
  std::int64_t runs = 0;
  std::int64_t first_seed = 1;
  std::int64_t seeds = 1;
  std::vector<std::string> axes;
  bool wall_time = false;
  int shard = 1;
  int shards = 1;
  json doc;  // as read
};

GridHeader header_of(const SweepGrid& g, int shard, int shards, bool wall_time) {
  GridHeader h;
  h.grid_digest = hex64(g.digest);
  h.runs = g.runs();
  h.first_seed = static_cast<std::int64_t>(g.first_seed);
  h.seeds = g.seeds;
  for (const SweepAxis& a : g.axes) h.axes.push_back(a.name);
  h.wall_time = wall_time;
  h.shard = shard;
  h.shards = shards;
  return h;
}

// The text of PREFIX.grid.json; a merge writes the unsharded sweep's, byte for byte.
std::string header_text(const GridHeader& h) {
  ordered_json j;
  j["format"] = kFormat;
  j["version"] = kSweepFormatVersion;
  j["grid_digest"] = h.grid_digest;
  j["runs"] = h.runs;
  ordered_json seeds;
  seeds["first"] = h.first_seed;
  seeds["count"] = h.seeds;
  j["seeds"] = seeds;
  j["axes"] = h.axes;
  j["wall_time"] = h.wall_time;
  if (h.shards > 1) j["shard"] = std::to_string(h.shard) + "/" + std::to_string(h.shards);
  return j.dump(2) + "\n";
}

std::string old_format_message(std::int64_t version) {
  std::string text = "hcsim sweep results of format " + std::to_string(version);
  if (version < 3) text += " (its header on the first line of the .jsonl)";
  return text + "; this hcsim reads format " + std::to_string(kSweepFormatVersion) +
         " only (the header in PREFIX.grid.json, docs/sweep-format.md): re-run the sweep with this hcsim, or read the files with the hcsim that wrote them";
}

// The version a format-2 (or older) header line names, if `line` is one.
std::optional<std::int64_t> old_header_version(const std::string& line) {
  try {
    const json j = parse_json(line, "");
    if (!j.is_object() || !j.contains("format") || j["format"] != kFormat) return std::nullopt;
    return j.contains("version") && j["version"].is_number_integer() ? j["version"].get<std::int64_t>() : 0;
  } catch (const ScenarioError&) {
    return std::nullopt;
  }
}

std::optional<std::pair<int, int>> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  int k = 0, n = 0;
  const char* end = text.data() + text.size();
  const auto [p1, e1] = std::from_chars(text.data(), text.data() + slash, k);
  const auto [p2, e2] = std::from_chars(text.data() + slash + 1, end, n);
  if (e1 != std::errc() || p1 != text.data() + slash || e2 != std::errc() || p2 != end || n < 2 || k < 1 || k > n) return std::nullopt;
  return std::pair{k, n};
}

GridHeader read_grid_header(const std::string& path) {
  GridHeader h;
  h.doc = parse_json(read_bounded_file(path, kGridHeaderBytesMax, "a grid header is a description, not data"), path,
                     "an hcsim sweep's grid header, like {\"format\": \"hcsim-sweep\", \"version\": 3, ...}");
  const JsonNode root(h.doc, path, "");
  if (!h.doc.is_object()) root.expected("an hcsim sweep's grid header object");
  const auto format = root.find("format");
  if (!format || !format->raw().is_string() || format->raw().get<std::string>() != kFormat) {
    (format ? *format : root).fail("not an hcsim sweep's grid header: expected {\"format\": \"hcsim-sweep\", ...}");
  }
  const JsonNode version = root.at("version");
  if (const std::int64_t v = version.integer(0, kIntMax); v != kSweepFormatVersion) version.fail(old_format_message(v));
  root.object({"format", "version", "grid_digest", "runs", "seeds", "axes", "wall_time", "shard"});
  h.grid_digest = root.at("grid_digest").str();
  h.runs = root.at("runs").integer(0, kRunsMax);
  const JsonNode seeds = root.at("seeds");
  seeds.object({"first", "count"});
  h.first_seed = seeds.at("first").integer(0, std::int64_t{1} << 62);
  h.seeds = seeds.at("count").integer(1, kRunsMax);
  for (const JsonNode& a : root.at("axes").array()) h.axes.push_back(a.str());
  h.wall_time = root.at("wall_time").boolean();
  if (const auto shard = root.find("shard")) {
    const auto kn = parse_shard(shard->str());
    if (!kn) shard->expected("\"K/N\" with 1 <= K <= N and N >= 2");
    std::tie(h.shard, h.shards) = *kn;
  }
  return h;
}

bool exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// The first line of an existing file (regular files only), or nothing if it is empty.
std::optional<std::string> first_line_of(const std::string& path) {
  std::ifstream in = open_input_file(path);
  std::string line;
  const LineRead r = read_bounded_line(in, line, kRowBytesMax);
  if (r == LineRead::kEnd) return std::nullopt;
  return line;
}

// The header beside a rows file, refusing rows of an older format (their header is their first line).
GridHeader header_beside(const std::string& jsonl_path) {
  if (const auto line = first_line_of(jsonl_path)) {
    if (const auto version = old_header_version(*line)) throw ScenarioError(jsonl_path, "", old_format_message(*version));
  }
  const std::string grid_path = sweep_grid_header_path(jsonl_path);
  if (!exists(grid_path)) {
    throw ScenarioError(jsonl_path, "", "its grid header " + grid_path +
                                            " is missing: results are PREFIX.jsonl with PREFIX.grid.json beside it (docs/sweep-format.md)");
  }
  return read_grid_header(grid_path);
}

// A results row, checked field by field: one schema for every line.
void check_row(const json& row, const std::string& where, const GridHeader& h) {
  const JsonNode r(row, where, "");
  if (!row.is_object()) r.expected("a results row object (one per line)");
  r.object({"run", "seed", "axes", "variant", "policy", "tp", "pp", "page_size", "verdict", "hang", "violated", "requests", "scheduled", "starved",
            "sched_p50_us", "sched_p99_us", "tokens_loaded", "l3_lost_tokens", "kv_bytes_discarded", "events", "end_us", "digest", "wall_us"});
  if (h.runs == 0) r.fail("a row, but the grid header says the grid has no runs");
  r.at("run").integer(0, h.runs - 1);
  r.at("seed").integer(0, kIntMax);
  const JsonNode axes = r.at("axes");
  (void)axes.members();  // an object, whose keys are the grid's axes and no others
  for (const std::string& a : h.axes) {
    if (!axes.raw().contains(a)) axes.fail("missing the value of axis \"" + a + "\"");
  }
  if (axes.raw().size() != h.axes.size()) axes.fail("expected the values of the " + std::to_string(h.axes.size()) + " axes of the grid header, no others");
  for (const char* key : {"variant", "policy", "verdict"}) (void)r.at(key).str();
  (void)r.at("hang").boolean();
  for (const JsonNode& v : r.at("violated").array()) (void)v.str();
  if (const auto pp = r.find("pp")) (void)pp->integer(1, kIntMax);  // rows written before pipeline stages have none
  for (const char* key : {"tp", "page_size", "requests", "scheduled", "starved", "sched_p50_us", "sched_p99_us", "tokens_loaded", "l3_lost_tokens",
                          "kv_bytes_discarded", "events", "end_us"}) {
    (void)r.at(key).integer(kIntMin, kIntMax);
  }
  const JsonNode digest = r.at("digest");
  const std::string d = digest.str();
  if (d.size() != 16 || d.find_first_not_of("0123456789abcdef") != std::string::npos) digest.expected("16 hex digits as a string");
  if (const auto wall = r.find("wall_us")) (void)wall->integer(kIntMin, kIntMax);
}

// The cells of a row its grid point decides, formatted once per point: a sweep's row is then
// integers and a few names appended to these.
struct PointFormat {
  std::string jsonl;  // ,"axes":{...},"variant":...,"page_size":N  (between the seed and the verdict)
  std::string csv;    // the axis labels, variant, policy, tp, pp and page size, each after a comma
  SummaryKey summary;
};

PointFormat point_format(const SweepGrid& g, const SweepPoint& p) {
  const Scenario& s = *p.scenario;
  const std::string policy(policy_name(s.policy.policy));
  ordered_json j;
  ordered_json axes = ordered_json::object();
  for (std::size_t a = 0; a < g.axes.size(); ++a) axes[g.axes[a].name] = g.axes[a].values[p.value_index[a]];
  j["axes"] = axes;
  j["variant"] = p.variant;
  j["policy"] = policy;
  j["tp"] = s.world.topology().tp;
  j["pp"] = s.world.pp;
  j["page_size"] = s.policy.page_size_tokens;
  const std::string dumped = j.dump();
  PointFormat f;
  f.jsonl = "," + dumped.substr(1, dumped.size() - 2);
  CsvLine csv;
  for (std::size_t a = 0; a < g.axes.size(); ++a) {
    if (g.axes[a].name != "variant") csv.add(g.axes[a].label(p.value_index[a]));
  }
  for (const std::string& c : {p.variant, policy, std::to_string(s.world.topology().tp), std::to_string(s.world.pp), std::to_string(s.policy.page_size_tokens)}) {
    csv.add(c);
  }
  f.csv = "," + csv.text();
  // As a results file's row reads back: its axes by name, less the two that name the table.
  std::map<std::string, std::string> labels;
  for (std::size_t a = 0; a < g.axes.size(); ++a) labels[g.axes[a].name] = g.axes[a].label(p.value_index[a]);
  f.summary = {policy + " / " + p.variant, p.variant, ""};
  for (const auto& [name, label] : labels) {
    if (name == "variant" || name == "/policy/name") continue;
    f.summary.point.append(f.summary.point.empty() ? "" : ", ").append(name).append(" = ").append(label);
  }
  if (f.summary.point.empty()) f.summary.point = "(base)";
  return f;
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

struct Row {
  std::string jsonl;
  std::string csv;
  std::size_t point = 0;   // in the grid
  SummaryOutcome outcome;  // what the summary adds of it
};

// The row of one run: its JSON Lines object (the keys in docs/sweep-format.md's order, as
// nlohmann::json writes it) and its CSV line.
Row format_row(const SweepGrid& g, const PointFormat& point, std::int64_t run, const RunMetrics& m, std::optional<std::int64_t> wall_us) {
  const std::string_view verdict = m.verdict == HangKind::kNone ? std::string_view("complete") : hang_kind_name(m.verdict);
  const std::string digest = hex64(m.digest);  // a string: 64 bits do not survive a JSON reader's doubles
  const std::int64_t seed = static_cast<std::int64_t>(g.seed_of(run));
  const bool hang = m.verdict != HangKind::kNone;
  Row row;
  std::string& j = row.jsonl;
  j.reserve(320 + point.jsonl.size());
  j.append("{\"run\":");
  append_int(j, run);
  j.append(",\"seed\":");
  append_int(j, seed);
  j.append(point.jsonl).append(",\"verdict\":").append(nlohmann::json(std::string(verdict)).dump()).append(",\"hang\":").append(hang ? "true" : "false");
  j.append(",\"violated\":").append(nlohmann::json(m.violated).dump());
  const std::pair<const char*, std::int64_t> numbers[] = {
      {"requests", m.requests},           {"scheduled", m.scheduled},         {"starved", m.starved},
      {"sched_p50_us", m.sched_p50_us},   {"sched_p99_us", m.sched_p99_us},   {"tokens_loaded", m.tokens_loaded},
      {"l3_lost_tokens", m.l3_lost_tokens}, {"kv_bytes_discarded", m.kv_bytes_discarded}, {"events", static_cast<std::int64_t>(m.events)},
      {"end_us", m.end_us}};
  for (const auto& [key, value] : numbers) {
    j.append(",\"").append(key).append("\":");
    append_int(j, value);
  }
  j.append(",\"digest\":\"").append(digest).append("\"");
  if (wall_us) {
    j.append(",\"wall_us\":");
    append_int(j, *wall_us);
  }
  j.append("}\n");

  std::string violated;
  for (const std::string& v : m.violated) {
    if (!violated.empty()) violated.push_back(';');
    violated.append(v);
  }
  std::string& c = row.csv;
  append_int(c, run);
  c.push_back(',');
  append_int(c, seed);
  c.append(point.csv);
  CsvLine rest;
  rest.add(std::string(verdict)).add(hang ? "1" : "0").add(violated);
  for (const auto& [key, value] : numbers) rest.add(std::to_string(value));
  rest.add(digest, true);  // quoted: a spreadsheet keeps "0012..." as text, not a number
  if (wall_us) rest.add(std::to_string(*wall_us));
  c.append(",").append(rest.line());
  row.outcome = {hang, std::string(verdict), m.scheduled, m.starved, m.sched_p50_us, m.sched_p99_us, m.l3_lost_tokens, m.kv_bytes_discarded};
  return row;
}

// An append-only output file: whole rows go out in one write(2) each flush, so a kill leaves at
// most one torn row at the end, which the next start cuts off. A failed write is cut back to the
// rows before it and throws OutputError naming the file.
class AppendFile {
 public:
  explicit AppendFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd_ < 0) throw OutputError(path + ": cannot write: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail(errno);
    size_ = st.st_size;
  }
  ~AppendFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  void write_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {  // bounded: each pass writes at least one byte or throws
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int error = n < 0 ? errno : EIO;
        (void)::ftruncate(fd_, size_);  // no torn row left behind, if the file system lets us
        fail(error);
      }
      done += static_cast<std::size_t>(n);
    }
    size_ += static_cast<off_t>(bytes.size());
  }
  // The rows on disk, and the close checked (a network file system reports late errors there).
  void close() {
    if (::fsync(fd_) != 0 && errno != EINVAL) fail(errno);
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) fail(errno);
  }

 private:
  [[noreturn]] void fail(int error) {
    std::string text = std::strerror(error);
    if (error == EFBIG) text += " (the file size limit, ulimit -f?)";
    throw OutputError(path_ + ": cannot write: " + text + "; the file keeps its whole rows and the same command resumes");
  }
  std::string path_;
  int fd_ = -1;
  off_t size_ = 0;
};

// How much of an existing rows file holds whole, expected rows: the byte length to keep and the rows.
struct Kept {
  std::uintmax_t bytes = 0;
  std::int64_t rows = 0;
  bool exists = false;
};

std::int64_t kth_run(std::int64_t k, int shard, int shards) { return (shard - 1) + k * shards; }

std::optional<std::int64_t> jsonl_run(const std::string& line) {
  try {
    const json j = parse_json(line, "");
    if (j.is_object() && j.contains("run") && j["run"].is_number_integer()) return j["run"].get<std::int64_t>();
  } catch (const ScenarioError&) {
  }
  return std::nullopt;
}

std::optional<std::int64_t> csv_run(const std::string& line) {
  std::int64_t run = -1;
  const auto end = line.data() + std::min(line.size(), line.find(','));
  const auto [p, e] = std::from_chars(line.data(), end, run);
  if (e != std::errc() || p != end) return std::nullopt;
  return run;
}

// The whole rows of this shard at the start of `path`, in order, at most `rows_max`; a CSV's
// column header first, which must be `csv_header`. Stops at the first row that is torn, garbled
// or not the next run: what follows is cut off and redone.
Kept scan_rows(const std::string& path, const std::string* csv_header, int shard, int shards, std::int64_t rows_max) {
  Kept kept;
  if (!exists(path)) return kept;
  std::ifstream in = open_input_file(path);
  kept.exists = true;
  std::string line;
  if (csv_header != nullptr) {
    if (read_bounded_line(in, line, kRowBytesMax) != LineRead::kLine) return kept;  // no whole header: start the file again
    if (line + "\n" != *csv_header) {
      throw ScenarioError(path, "", "holds the results of another grid, shard or format (its column header differs); remove it or choose another -o");
    }
    kept.bytes = line.size() + 1;
  }
  while (kept.rows < rows_max && read_bounded_line(in, line, kRowBytesMax) == LineRead::kLine) {
    const auto run = csv_header != nullptr ? csv_run(line) : jsonl_run(line);
    if (run != kth_run(kept.rows, shard, shards)) break;
    kept.bytes += line.size() + 1;
    ++kept.rows;
  }
  return kept;
}

void cut_to(const std::string& path, std::uintmax_t bytes) {
  if (::truncate(path.c_str(), static_cast<off_t>(bytes)) != 0) throw OutputError(path + ": cannot cut off its torn tail: " + std::strerror(errno));
}

// PREFIX.grid.json for this sweep: there and equal, or written now. Rows without it are refused:
// nothing says whose they are (or they are of an older format, whose header was their first line).
void claim_outputs(const std::string& grid_path, const std::string& jsonl_path, const std::string& csv_path, const std::string& header) {
  if (exists(grid_path)) {
    const GridHeader found = read_grid_header(grid_path);
    if (found.doc != json::parse(header)) {
      std::string why = found.doc.value("grid_digest", "") != json::parse(header).value("grid_digest", "") ? "another grid (its digest differs)"
                                                                                                          : "another shard or options (--shard, --wall-time)";
      throw ScenarioError(grid_path, "", "holds the results of another grid, shard or format: " + why + "; remove the files or choose another -o");
    }
    return;
  }
  for (const std::string& path : {jsonl_path, csv_path}) {
    if (!exists(path)) continue;
    const auto line = first_line_of(path);
    if (!line) continue;
    if (const auto version = old_header_version(*line)) throw ScenarioError(path, "", old_format_message(*version));
    throw ScenarioError(path, "", "holds rows, but " + grid_path + ", which says whose, is missing; remove it or choose another -o");
  }
  write_file_atomically(grid_path, header);
}

// Resuming: both rows files cut to the whole rows they share, the CSV started again where it has
// no whole column header. Returns how many rows they keep.
std::int64_t cut_to_shared_rows(const std::string& jsonl_path, const std::string& csv_path, const std::string& csv_header, int shard, int shards,
                                std::int64_t shard_runs) {
  const Kept kj = scan_rows(jsonl_path, nullptr, shard, shards, shard_runs);
  const Kept kc = scan_rows(csv_path, &csv_header, shard, shards, shard_runs);
  const std::int64_t resumed = std::min(kj.rows, kc.rows);
  if (kj.exists) cut_to(jsonl_path, kj.rows == resumed ? kj.bytes : scan_rows(jsonl_path, nullptr, shard, shards, resumed).bytes);
  if (kc.bytes == 0) {
    if (kc.exists) cut_to(csv_path, 0);
    AppendFile(csv_path).write_all(csv_header);
  } else {
    cut_to(csv_path, kc.rows == resumed ? kc.bytes : scan_rows(csv_path, &csv_header, shard, shards, resumed).bytes);
  }
  return resumed;
}

// The two rows files, appended through buffers flushed every kFlushBytes or kFlushEvery.
class RowFiles {
 public:
  RowFiles(const std::string& jsonl_path, const std::string& csv_path) : jsonl_(jsonl_path), csv_(csv_path) {}
  std::string jsonl_buf, csv_buf;

  void flush_if_due() {
    if (jsonl_buf.size() >= kFlushBytes || std::chrono::steady_clock::now() - last_flush_ >= kFlushEvery) flush();
  }
  void flush() {
    // JSON Lines first: a kill between the two leaves the CSV behind, and the restart cuts both
    // to the rows they share.
    jsonl_.write_all(jsonl_buf);
    csv_.write_all(csv_buf);
    jsonl_buf.clear();
    csv_buf.clear();
    last_flush_ = std::chrono::steady_clock::now();
  }
  void close() {
    jsonl_.close();
    csv_.close();
  }

 private:
  AppendFile jsonl_;
  AppendFile csv_;
  std::chrono::steady_clock::time_point last_flush_ = std::chrono::steady_clock::now();
};

// A shard's runs, simulated by worker threads and taken in run order by one writer. Workers claim
// runs in order; the window bounds how far a fast worker may run ahead of a slow one, and with it
// the memory held.
class OrderedRuns {
 public:
  OrderedRuns(const SweepConfig& c, std::int64_t shard_runs, std::int64_t resumed)
      : c_(c), shard_runs_(shard_runs), window_(std::max<std::int64_t>(1024, std::int64_t{256} * c.jobs)), ring_(static_cast<std::size_t>(window_)),
        written_(resumed), next_(resumed) {
    points_.reserve(c.grid->points.size());
    for (const SweepPoint& p : c.grid->points) points_.push_back(point_format(*c.grid, p));
  }

  // A worker thread: runs what it claims until every run is claimed or one failed.
  void work() {
    for (;;) {
      const std::int64_t k = next_.fetch_add(1);
      if (k >= shard_runs_ || failed_.load()) return;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (k >= written_ + window_) {
          ++workers_waiting_;
          worker_cv_.wait(lock, [&] { return k < written_ + window_ || failed_.load(); });
          --workers_waiting_;
        }
        if (failed_.load()) return;
      }
      run(k);
    }
  }

  // Waits a little for the next row, then appends the rows ready, in order, to the buffers and
  // adds them to `summary`. Returns the rows taken so far; none once every row is taken or a run failed.
  std::optional<std::int64_t> take_ready(std::string& jsonl_buf, std::string& csv_buf, SweepSummary& summary) {
    std::unique_lock<std::mutex> lock(mu_);
    if (written_ >= shard_runs_ || failed_.load()) return std::nullopt;
    writer_waiting_ = true;
    writer_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return slot(written_).has_value() || failed_.load(); });
    writer_waiting_ = false;
    taken_.clear();
    while (written_ < shard_runs_ && slot(written_).has_value()) {
      taken_.push_back(std::move(*slot(written_)));
      slot(written_).reset();
      ++written_;
    }
    const std::int64_t done = written_;
    const bool wake_workers = !taken_.empty() && workers_waiting_ > 0;
    lock.unlock();
    if (wake_workers) worker_cv_.notify_all();
    for (const Row& row : taken_) {
      jsonl_buf += row.jsonl;
      csv_buf += row.csv;
      summary.add(points_[row.point].summary, row.outcome);
    }
    return done;
  }

  // The writer failed: the workers stop at their next claim or wait.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      failed_ = true;
    }
    wake_everyone();
  }

  // Once the workers are joined: the rows taken, and what stopped a run, thrown.
  std::int64_t written() const { return written_; }
  void rethrow_failure() const {
    if (out_of_memory_) throw std::bad_alloc();
    if (failed_.load()) throw std::runtime_error(failure_);
  }

 private:
  std::optional<Row>& slot(std::int64_t k) { return ring_[static_cast<std::size_t>(k % window_)]; }

  void run(std::int64_t k) {
    const std::int64_t run = kth_run(k, c_.shard, c_.shards);
    try {
      Row row = simulate_row(run);
      std::lock_guard<std::mutex> lock(mu_);
      slot(k) = std::move(row);
      // The writer sleeps only on the row it takes next: waking it for any other is a wasted futex call.
      if (writer_waiting_ && k == written_) writer_cv_.notify_one();
    } catch (const std::bad_alloc&) {  // the process's limit, not the run's fault: said as such by main
      std::lock_guard<std::mutex> lock(mu_);
      out_of_memory_ = true;
      failed_ = true;
      wake_everyone();
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!failed_.exchange(true)) failure_ = "run " + std::to_string(run) + ": " + e.what();
      wake_everyone();
    }
  }

  void wake_everyone() {
    writer_cv_.notify_all();
    worker_cv_.notify_all();
  }

  Row simulate_row(std::int64_t run) const {
    const auto w0 = std::chrono::steady_clock::now();
    const SweepGrid& g = *c_.grid;
    const SweepPoint& p = g.point_of(run);
    const RunMetrics m = simulate_for_metrics(*p.scenario, g.options_of(run));
    std::optional<std::int64_t> wall_us;
    if (c_.wall_time) wall_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - w0).count();
    const auto point = static_cast<std::size_t>(&p - g.points.data());
    Row row = format_row(g, points_[point], run, m, wall_us);
    row.point = point;
    return row;
  }

  const SweepConfig& c_;
  const std::int64_t shard_runs_;
  const std::int64_t window_;
  std::vector<std::optional<Row>> ring_;  // run k's row at k % window_, until taken
  std::vector<PointFormat> points_;       // by grid point
  std::vector<Row> taken_;                // the writer's: rows taken in one round
  std::mutex mu_;
  std::condition_variable writer_cv_;     // the next row is ready, or a run failed
  std::condition_variable worker_cv_;     // the window moved on, or the writer failed
  bool writer_waiting_ = false;
  int workers_waiting_ = 0;
  std::int64_t written_;  // rows taken by the writer
  std::atomic<std::int64_t> next_;
  std::atomic<bool> failed_{false};
  std::string failure_;
  bool out_of_memory_ = false;
};

}  // namespace

std::string sweep_grid_header_path(const std::string& jsonl_path) {
  constexpr std::string_view kJsonl = ".jsonl";
  const std::string prefix = jsonl_path.ends_with(kJsonl) ? jsonl_path.substr(0, jsonl_path.size() - kJsonl.size()) : jsonl_path;
  return prefix + ".grid.json";
}

SweepStats run_sweep(const SweepConfig& c) {
  HCSIM_ASSERT(c.grid != nullptr && c.jobs >= 1 && c.shards >= 1 && c.shard >= 1 && c.shard <= c.shards);
  const SweepGrid& g = *c.grid;
  const auto t0 = std::chrono::steady_clock::now();
  SweepStats st;
  const std::int64_t total = g.runs();
  st.shard_runs = total > c.shard - 1 ? (total - c.shard + c.shards) / c.shards : 0;
  const OutputLock lock(c.out_prefix, "sweep");
  const std::string grid_path = c.out_prefix + ".grid.json";
  const std::string jsonl_path = c.out_prefix + ".jsonl";
  const std::string csv_path = c.out_prefix + ".csv";
  const std::string csv_header = csv_header_of(g, c.wall_time);
  const GridHeader header = header_of(g, c.shard, c.shards, c.wall_time);
  claim_outputs(grid_path, jsonl_path, csv_path, header_text(header));
  st.resumed = cut_to_shared_rows(jsonl_path, csv_path, csv_header, c.shard, c.shards, st.shard_runs);
  st.summary = SweepSummary(header.grid_digest);
  if (st.resumed > 0) {
    for (const json& row : read_sweep_rows(jsonl_path).rows) st.summary.add_row(row);
  }
  RowFiles files(jsonl_path, csv_path);

  OrderedRuns runs(c, st.shard_runs, st.resumed);
  std::vector<std::thread> threads;
  for (int i = 0; i < c.jobs; ++i) threads.emplace_back([&runs] { runs.work(); });
  Progress progress(c.progress, st.shard_runs, "runs", "sweep", st.resumed);
  // A failed write (a full disk) stops the workers before it is thrown: no thread outlives this.
  std::exception_ptr write_error;
  try {
    while (const auto done = runs.take_ready(files.jsonl_buf, files.csv_buf, st.summary)) {
      files.flush_if_due();
      progress.update(*done);
    }
  } catch (...) {
    write_error = std::current_exception();
    runs.stop();
  }
  for (auto& t : threads) t.join();
  if (!write_error) {
    try {
      files.flush();  // the rows finished before a failed run, too: a rerun resumes after them
      files.close();
    } catch (...) {
      write_error = std::current_exception();
    }
  }
  if (write_error) std::rethrow_exception(write_error);
  runs.rethrow_failure();
  st.ran = runs.written() - st.resumed;
  progress.finish();
  st.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

SweepRows read_sweep_rows(const std::string& path) {
  SweepRows out;
  const GridHeader h = header_beside(path);
  out.header = h.doc;
  std::ifstream in = open_input_file(path);
  std::string line;
  for (std::int64_t line_no = 1;; ++line_no) {  // bounded: each line is a row, and rows are at most the grid's runs
    const LineRead r = read_bounded_line(in, line, kRowBytesMax);
    if (r == LineRead::kEnd || r == LineRead::kLastUnterminated) break;  // a torn last row: a sweep still running, or killed
    const std::string where = path + ":" + std::to_string(line_no);
    if (r == LineRead::kTooLong) {
      throw ScenarioError(where, "", "a line longer than " + std::to_string(kRowBytesMax >> 20) + " MiB: not a results row (one JSON object per line)");
    }
    if (static_cast<std::int64_t>(out.rows.size()) >= h.runs) {
      throw ScenarioError(where, "", "more rows than the " + std::to_string(h.runs) + " runs its grid header " + sweep_grid_header_path(path) + " gives");
    }
    json row = parse_json(line, where, "a results row, one JSON object per line (docs/sweep-format.md)");
    check_row(row, where, h);
    out.rows.push_back(std::move(row));
  }
  return out;
}

namespace {

// Whether two prefixes name the same outputs: the same path once resolved, or the same files.
bool same_outputs(const std::string& a, const std::string& b) {
  std::error_code ea, eb;
  const fs::path ca = fs::weakly_canonical(a, ea), cb = fs::weakly_canonical(b, eb);
  if (!ea && !eb && ca == cb) return true;
  for (const char* suffix : {".jsonl", ".csv", ".grid.json"}) {
    std::error_code ec;
    if (fs::equivalent(a + suffix, b + suffix, ec) && !ec) return true;
  }
  return false;
}

struct Shard {
  std::string prefix;
  GridHeader header;
  std::vector<std::string> jsonl_rows, csv_rows;
  std::vector<std::int64_t> runs;
  std::string csv_header;
};

// A shard's files, whole rows only (a torn last row is a shard still running or killed).
Shard read_shard(const std::string& prefix) {
  Shard sh;
  sh.prefix = prefix;
  const std::string jsonl_path = prefix + ".jsonl", csv_path = prefix + ".csv";
  if (const auto holder = output_holder(prefix)) {
    throw ScenarioError(jsonl_path, "", "still being written (" + *holder + "): wait for that sweep to end, then merge");
  }
  sh.header = header_beside(jsonl_path);
  std::ifstream j = open_input_file(jsonl_path);
  std::string line;
  for (std::int64_t line_no = 1; read_bounded_line(j, line, kRowBytesMax) == LineRead::kLine; ++line_no) {
    const std::string where = jsonl_path + ":" + std::to_string(line_no);
    if (static_cast<std::int64_t>(sh.runs.size()) >= sh.header.runs) throw ScenarioError(where, "", "more rows than its grid has runs");
    const json row = parse_json(line, where, "a results row, one JSON object per line (docs/sweep-format.md)");
    check_row(row, where, sh.header);
    sh.runs.push_back(row["run"].get<std::int64_t>());
    sh.jsonl_rows.push_back(line);
  }
  std::ifstream c = open_input_file(csv_path);
  if (read_bounded_line(c, sh.csv_header, kRowBytesMax) != LineRead::kLine) throw ScenarioError(csv_path, "", "no column header: not a sweep's CSV");
  for (std::int64_t rows = 0; read_bounded_line(c, line, kRowBytesMax) == LineRead::kLine; ++rows) {
    if (rows >= sh.header.runs) throw ScenarioError(csv_path, "", "more rows than its grid has runs");
    sh.csv_rows.push_back(line);
  }
  if (sh.csv_rows.size() != sh.jsonl_rows.size()) {
    throw ScenarioError(prefix, "", "the .jsonl holds " + std::to_string(sh.jsonl_rows.size()) + " rows and the .csv " +
                                        std::to_string(sh.csv_rows.size()) + "; rerun that shard's sweep to finish it");
  }
  return sh;
}

}  // namespace

void merge_sweeps(const std::vector<std::string>& shard_prefixes, const std::string& out_prefix) {
  if (shard_prefixes.empty()) throw std::runtime_error("merge: no shard outputs given");
  for (const std::string& prefix : shard_prefixes) {
    if (same_outputs(prefix, out_prefix)) {
      throw OutputError(out_prefix + ": is also a shard given to merge (" + prefix + "); merging onto an input would overwrite it: choose another -o");
    }
  }
  const OutputLock lock(out_prefix, "merge");
  std::vector<Shard> shards;
  for (const std::string& prefix : shard_prefixes) {
    Shard sh = read_shard(prefix);
    if (!shards.empty()) {
      const GridHeader& first = shards[0].header;
      if (sh.header.grid_digest != first.grid_digest) {
        throw ScenarioError(prefix + ".grid.json", "", "a shard of another grid (digest " + sh.header.grid_digest + ", not " + first.grid_digest + ")");
      }
      GridHeader a = sh.header, b = first;
      a.shard = a.shards = b.shard = b.shards = 1;
      if (header_text(a) != header_text(b)) {
        throw ScenarioError(prefix + ".grid.json", "", "its header differs from " + shards[0].prefix + ".grid.json's other than by the shard (--wall-time?)");
      }
      if (sh.csv_header != shards[0].csv_header) throw ScenarioError(prefix + ".csv", "", "its columns differ from " + shards[0].prefix + ".csv's");
    }
    shards.push_back(std::move(sh));
  }
  // By run number: each exactly once. Sorted (run, shard, row) triples, as many as the rows read,
  // not a table of the header's run count, which a file may overstate.
  const std::int64_t runs = shards[0].header.runs;
  struct Place {
    std::int64_t run;
    std::size_t shard, row;
  };
  std::vector<Place> at;
  for (std::size_t s = 0; s < shards.size(); ++s) {
    for (std::size_t r = 0; r < shards[s].runs.size(); ++r) at.push_back({shards[s].runs[r], s, r});
  }
  std::sort(at.begin(), at.end(), [](const Place& x, const Place& y) { return x.run != y.run ? x.run < y.run : x.shard < y.shard; });
  for (std::size_t i = 1; i < at.size(); ++i) {
    if (at[i].run == at[i - 1].run) {
      throw ScenarioError(shards[at[i].shard].prefix + ".jsonl", "", "run " + std::to_string(at[i].run) + " is in both " + shards[at[i - 1].shard].prefix +
                                                                         " and " + shards[at[i].shard].prefix + " (overlapping shards?)");
    }
  }
  if (static_cast<std::int64_t>(at.size()) < runs) {
    std::int64_t first_missing = static_cast<std::int64_t>(at.size());
    for (std::size_t i = 0; i < at.size(); ++i) {
      if (at[i].run != static_cast<std::int64_t>(i)) {
        first_missing = static_cast<std::int64_t>(i);
        break;
      }
    }
    throw ScenarioError(shards[0].prefix + ".grid.json", "", std::to_string(runs - static_cast<std::int64_t>(at.size())) + " of " + std::to_string(runs) +
                                                                 " runs are in no shard (the first: run " + std::to_string(first_missing) +
                                                                 "); a shard is missing or unfinished");
  }
  // The unsharded header: the shards', less the shard.
  GridHeader merged = shards[0].header;
  merged.shard = merged.shards = 1;
  const std::string grid_path = out_prefix + ".grid.json";
  AtomicOutput jf(out_prefix + ".jsonl"), cf(out_prefix + ".csv");
  cf.write(shards[0].csv_header);
  cf.write("\n");
  for (const Place& p : at) {
    jf.write(shards[p.shard].jsonl_rows[p.row]);
    jf.write("\n");
    cf.write(shards[p.shard].csv_rows[p.row]);
    cf.write("\n");
  }
  // The old header goes first and the new one comes last: rows without a header are refused, so a
  // merge killed between the renames never passes for a finished one.
  if (::unlink(grid_path.c_str()) != 0 && errno != ENOENT) throw OutputError(grid_path + ": cannot replace: " + std::strerror(errno));
  jf.commit();
  cf.commit();
  write_file_atomically(grid_path, header_text(merged));
}

void SweepSummary::add(const SummaryKey& key, const SummaryOutcome& outcome) {
  auto [at, added] = where_.try_emplace({key.table, key.point});
  if (added) {
    auto table = std::find_if(tables_.begin(), tables_.end(), [&](const auto& t) { return t.first == key.table; });
    if (table == tables_.end()) table = tables_.insert(tables_.end(), {key.table, Table{key.variant, {}}});
    table->second.lines.emplace_back(key.point, Line{});
    at->second = {static_cast<std::size_t>(table - tables_.begin()), table->second.lines.size() - 1};
  }
  Line& line = tables_[at->second.first].second.lines[at->second.second].second;
  ++runs_;
  ++line.runs;
  if (outcome.hang) {
    ++line.hangs;
    ++line.kinds[outcome.verdict];
  }
  line.starved += outcome.starved;
  line.l3_lost_tokens += outcome.l3_lost_tokens;
  line.kv_bytes_discarded += outcome.kv_bytes_discarded;
  if (outcome.scheduled > 0) {
    line.p50_us.push_back(outcome.sched_p50_us);
    line.p99_us.push_back(outcome.sched_p99_us);
  }
}

void SweepSummary::add_row(const json& r) {
  SummaryKey key{r.value("policy", "?") + " / " + r.value("variant", "?"), r.value("variant", "?"), ""};
  for (const auto& [name, value] : r["axes"].items()) {  // by name: a json object's order
    if (name == "variant" || name == "/policy/name") continue;
    key.point += (key.point.empty() ? "" : ", ") + name + " = " + value_label(value);
  }
  if (key.point.empty()) key.point = "(base)";
  const std::int64_t zero = 0;
  add(key, {r.value("hang", false), r.value("verdict", "?"), r.value("scheduled", zero), r.value("starved", zero), r.value("sched_p50_us", zero),
            r.value("sched_p99_us", zero), r.value("l3_lost_tokens", zero), r.value("kv_bytes_discarded", zero)});
}

SweepSummary summary_of(const SweepRows& rows) {
  SweepSummary summary(rows.header.value("grid_digest", "?"));
  for (const json& r : rows.rows) summary.add_row(r);
  return summary;
}

void SweepSummary::write(std::ostream& out, const std::string& markdown_path) const {
  std::ostringstream md;
  md << "# Sweep summary\n\n" << runs_ << " runs, grid digest " << grid_digest_ << ". Hang rate with its 95% Wilson interval; "
     << "time to schedule is the median over runs of each run's p50 and the p99 over runs of each run's p99; waste is per run.\n";
  for (const auto& [table, t] : tables_) {
    md << "\n## " << table << "\n\n";
    std::string error;
    if (const auto fixes = parse_variant(t.variant, &error)) md << upstream_label(*fixes) << ".\n\n";
    md << "| point | runs | hangs | hang rate | 95% interval | kinds | sched p50 (ms) | sched p99 (ms) | starved/run | L3 tokens lost/run | KV MiB discarded/run |\n";
    md << "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|\n";
    for (const auto& [point, given] : t.lines) {
      Line gr = given;  // percentile() sorts
      const Interval ci = wilson_interval(gr.hangs, gr.runs);
      std::string kinds;
      for (const auto& [k, n] : gr.kinds) kinds += (kinds.empty() ? "" : ", ") + k + " " + std::to_string(n);
      const double runs = static_cast<double>(gr.runs);
      md << std::fixed << "| " << point << " | " << gr.runs << " | " << gr.hangs << " | " << std::setprecision(1) << 100.0 * static_cast<double>(gr.hangs) / runs
         << "% | " << 100.0 * ci.low << "% to " << 100.0 * ci.high << "% | " << (kinds.empty() ? "-" : kinds) << " | " << std::setprecision(2)
         << static_cast<double>(percentile(gr.p50_us, 50)) / 1e3 << " | " << static_cast<double>(percentile(gr.p99_us, 99)) / 1e3 << " | "
         << static_cast<double>(gr.starved) / runs << " | " << std::setprecision(0) << static_cast<double>(gr.l3_lost_tokens) / runs << " | "
         << std::setprecision(2) << static_cast<double>(gr.kv_bytes_discarded) / runs / (1 << 20) << " |\n";
    }
  }
  out << md.str();
  if (!markdown_path.empty()) write_file_atomically(markdown_path, md.str());
}

}  // namespace hcsim
