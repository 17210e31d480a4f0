#include "tools/sweep.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iomanip>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "policy/assert.h"
#include "sim/run_metrics.h"
#include "sim/seed_sweep.h"

namespace hcsim {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr const char* kFormat = "hcsim-sweep";
// 2: tokens_lost (registered minus committed) became l3_lost_tokens (agreed L3 hits not published).
constexpr int kFormatVersion = 2;
constexpr std::size_t kFlushBytes = 1 << 20;
constexpr auto kFlushEvery = std::chrono::milliseconds(200);

std::string hex64(std::uint64_t v) {
  std::ostringstream s;
  s << std::hex << std::setw(16) << std::setfill('0') << v;
  return s.str();
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::vector<std::string> csv_columns(const SweepGrid& g, bool wall_time) {
  std::vector<std::string> cols{"run", "seed"};
  for (const SweepAxis& a : g.axes) {
    if (a.name != "variant") cols.push_back(a.name);  // the variant has its own column
  }
  for (const char* c : {"variant", "policy", "tp", "page_size", "verdict", "hang", "violated", "requests", "scheduled", "starved",
                        "sched_p50_us", "sched_p99_us", "tokens_loaded", "l3_lost_tokens", "kv_bytes_discarded", "events", "end_us", "digest"}) {
    cols.emplace_back(c);
  }
  if (wall_time) cols.emplace_back("wall_us");
  return cols;
}

std::string join_csv(const std::vector<std::string>& cells) {
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) line.push_back(',');
    line.append(csv_cell(cells[i]));
  }
  line.push_back('\n');
  return line;
}

// The header line: what the rows belong to. A shard's names its shard; the merge drops it.
ordered_json header_of(const SweepGrid& g, int shard, int shards) {
  ordered_json h;
  h["format"] = kFormat;
  h["version"] = kFormatVersion;
  h["grid_digest"] = hex64(g.digest);
  h["runs"] = g.runs();
  h["seeds"] = {{"first", g.first_seed}, {"count", g.seeds}};
  h["axes"] = json::array();
  for (const SweepAxis& a : g.axes) h["axes"].push_back(a.name);
  if (shards > 1) h["shard"] = std::to_string(shard) + "/" + std::to_string(shards);
  return h;
}

struct Row {
  std::string jsonl;
  std::string csv;
};

Row format_row(const SweepGrid& g, std::int64_t run, const RunMetrics& m, std::optional<std::int64_t> wall_us) {
  const SweepPoint& p = g.point_of(run);
  const Scenario& s = *p.scenario;
  const std::string verdict = m.verdict == HangKind::kNone ? "complete" : std::string(hang_kind_name(m.verdict));
  std::string violated;
  for (const std::string& v : m.violated) {
    if (!violated.empty()) violated.push_back(';');
    violated.append(v);
  }
  ordered_json j;
  j["run"] = run;
  j["seed"] = g.seed_of(run);
  ordered_json axes = ordered_json::object();
  for (std::size_t a = 0; a < g.axes.size(); ++a) axes[g.axes[a].name] = g.axes[a].values[p.value_index[a]];
  j["axes"] = axes;
  j["variant"] = p.variant;
  j["policy"] = std::string(policy_name(s.policy.policy));
  j["tp"] = s.world.ranks;
  j["page_size"] = s.policy.page_size_tokens;
  j["verdict"] = verdict;
  j["hang"] = m.verdict != HangKind::kNone;
  j["violated"] = m.violated;
  j["requests"] = m.requests;
  j["scheduled"] = m.scheduled;
  j["starved"] = m.starved;
  j["sched_p50_us"] = m.sched_p50_us;
  j["sched_p99_us"] = m.sched_p99_us;
  j["tokens_loaded"] = m.tokens_loaded;
  j["l3_lost_tokens"] = m.l3_lost_tokens;
  j["kv_bytes_discarded"] = m.kv_bytes_discarded;
  j["events"] = m.events;
  j["end_us"] = m.end_us;
  j["digest"] = hex64(m.digest);
  if (wall_us) j["wall_us"] = *wall_us;
  std::vector<std::string> cells{std::to_string(run), std::to_string(g.seed_of(run))};
  for (std::size_t a = 0; a < g.axes.size(); ++a) {
    if (g.axes[a].name != "variant") cells.push_back(g.axes[a].label(p.value_index[a]));
  }
  for (const std::string& c : {p.variant, j["policy"].get<std::string>(), std::to_string(s.world.ranks), std::to_string(s.policy.page_size_tokens), verdict,
                               std::string(m.verdict != HangKind::kNone ? "1" : "0"), violated, std::to_string(m.requests),
                               std::to_string(m.scheduled), std::to_string(m.starved), std::to_string(m.sched_p50_us),
                               std::to_string(m.sched_p99_us), std::to_string(m.tokens_loaded), std::to_string(m.l3_lost_tokens),
                               std::to_string(m.kv_bytes_discarded), std::to_string(m.events), std::to_string(m.end_us), hex64(m.digest)}) {
    cells.push_back(c);
  }
  if (wall_us) cells.push_back(std::to_string(*wall_us));
  return {j.dump() + "\n", join_csv(cells)};
}

// An append-only output file: whole rows go out in one write(2) each flush, so a kill leaves at
// most one torn row at the end, which the next start cuts off.
class AppendFile {
 public:
  explicit AppendFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(path + ": cannot open for appending");
  }
  ~AppendFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  void write_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0) throw std::runtime_error(path_ + ": write failed (disk full?)");
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// How much of an existing file holds whole, expected rows: the byte length to keep and the rows.
struct Kept {
  std::uintmax_t bytes = 0;
  std::int64_t rows = 0;
  bool exists = false;
};

std::int64_t kth_run(std::int64_t k, int shard, int shards) { return (shard - 1) + k * shards; }

Kept scan_existing(const std::string& path, const std::string& expected_header, bool is_jsonl, int shard, int shards, std::int64_t shard_runs) {
  Kept kept;
  std::ifstream in(path, std::ios::binary);
  if (!in) return kept;
  kept.exists = true;
  std::string line;
  if (!std::getline(in, line) || in.eof()) return kept;  // no whole header: start the file again
  if (line + "\n" != expected_header) {
    throw std::runtime_error(path + ": holds the results of another grid, shard or format (its first line differs); remove it or choose another --out");
  }
  kept.bytes = line.size() + 1;
  while (kept.rows < shard_runs && std::getline(in, line) && !in.eof()) {
    const std::int64_t expected_run = kth_run(kept.rows, shard, shards);
    std::int64_t run = -1;
    if (is_jsonl) {
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("run") || !j["run"].is_number_integer()) break;
      run = j["run"].get<std::int64_t>();
    } else {
      const auto comma = line.find(',');
      try {
        run = std::stoll(line.substr(0, comma));
      } catch (const std::exception&) {
        break;
      }
    }
    if (run != expected_run) break;
    kept.bytes += line.size() + 1;
    ++kept.rows;
  }
  return kept;
}

void cut_to(const std::string& path, std::uintmax_t bytes) {
  if (::truncate(path.c_str(), static_cast<off_t>(bytes)) != 0) throw std::runtime_error(path + ": cannot cut off its torn tail");
}

// Rows kept in a file, cut to `rows` whole rows.
std::uintmax_t bytes_of_rows(const std::string& path, std::int64_t rows) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  std::uintmax_t bytes = 0;
  for (std::int64_t i = 0; i <= rows && std::getline(in, line); ++i) bytes += line.size() + 1;  // the header, then rows
  return bytes;
}

class Progress {
 public:
  Progress(std::FILE* out, std::int64_t total, std::int64_t done) : out_(out), total_(total), start_done_(done) {
    tty_ = out_ != nullptr && ::isatty(::fileno(out_)) == 1;
    start_ = last_ = std::chrono::steady_clock::now();
  }
  void update(std::int64_t done, bool final = false) {
    if (out_ == nullptr) return;
    const auto now = std::chrono::steady_clock::now();
    if (!final && now - last_ < (tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(5000))) return;
    last_ = now;
    const double s = std::chrono::duration<double>(now - start_).count();
    const double rate = s > 0 ? static_cast<double>(done - start_done_) / s : 0.0;
    const double eta_s = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    const double pct = total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(pct / 100.0 * kWidth);
      std::fprintf(out_, "\r  sweep [%s%s] %5.1f%%  %lld/%lld runs  %.0f runs/s  ETA %.0f s ", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(kWidth - filled), '.').c_str(), pct, static_cast<long long>(done),
                   static_cast<long long>(total_), rate, eta_s);
      if (final) std::fprintf(out_, "\n");
    } else {
      std::fprintf(out_, "sweep: %lld/%lld runs (%.1f%%), %.0f runs/s, ETA %.0f s\n", static_cast<long long>(done), static_cast<long long>(total_), pct, rate,
                   eta_s);
    }
    std::fflush(out_);
  }

 private:
  std::FILE* out_;
  bool tty_ = false;
  std::int64_t total_;
  std::int64_t start_done_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace

SweepStats run_sweep(const SweepConfig& c) {
  HCSIM_ASSERT(c.grid != nullptr && c.jobs >= 1 && c.shards >= 1 && c.shard >= 1 && c.shard <= c.shards);
  const SweepGrid& g = *c.grid;
  const auto t0 = std::chrono::steady_clock::now();
  SweepStats st;
  const std::int64_t total = g.runs();
  st.shard_runs = total > c.shard - 1 ? (total - c.shard + c.shards) / c.shards : 0;
  const std::string jsonl_path = c.out_prefix + ".jsonl";
  const std::string csv_path = c.out_prefix + ".csv";
  const std::string jsonl_header = header_of(g, c.shard, c.shards).dump() + "\n";
  const std::string csv_header = join_csv(csv_columns(g, c.wall_time));

  const Kept kj = scan_existing(jsonl_path, jsonl_header, true, c.shard, c.shards, st.shard_runs);
  const Kept kc = scan_existing(csv_path, csv_header, false, c.shard, c.shards, st.shard_runs);
  st.resumed = std::min(kj.rows, kc.rows);
  for (const auto& [path, kept, header] : {std::tuple{jsonl_path, kj, jsonl_header}, std::tuple{csv_path, kc, csv_header}}) {
    if (kept.bytes == 0) {
      if (kept.exists) cut_to(path, 0);
      AppendFile(path).write_all(header);
    } else {
      cut_to(path, kept.rows == st.resumed ? kept.bytes : bytes_of_rows(path, st.resumed));
    }
  }
  AppendFile jsonl(jsonl_path);
  AppendFile csv(csv_path);

  // Workers claim runs in order; the writer appends them in order. The window bounds how far a
  // fast worker may run ahead of a slow one, and with it the memory held.
  const std::int64_t window = std::max<std::int64_t>(1024, std::int64_t{256} * c.jobs);
  std::vector<std::optional<Row>> ring(static_cast<std::size_t>(window));
  std::mutex mu;
  std::condition_variable cv;
  std::int64_t written = st.resumed;
  std::atomic<std::int64_t> next{st.resumed};
  std::atomic<bool> failed{false};
  std::string failure;
  bool out_of_memory = false;
  auto worker = [&] {
    for (;;) {
      const std::int64_t k = next.fetch_add(1);
      if (k >= st.shard_runs || failed.load()) return;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return k < written + window || failed.load(); });
        if (failed.load()) return;
      }
      const std::int64_t run = kth_run(k, c.shard, c.shards);
      try {
        const auto w0 = std::chrono::steady_clock::now();
        const Scenario& s = *g.point_of(run).scenario;
        const RunMetrics m = simulate_for_metrics(s, g.options_of(run));
        std::optional<std::int64_t> wall_us;
        if (c.wall_time) wall_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - w0).count();
        Row row = format_row(g, run, m, wall_us);
        std::lock_guard<std::mutex> lock(mu);
        ring[static_cast<std::size_t>(k % window)] = std::move(row);
      } catch (const std::bad_alloc&) {  // the process's limit, not the run's fault: said as such by main
        std::lock_guard<std::mutex> lock(mu);
        out_of_memory = true;
        failed = true;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) failure = "run " + std::to_string(run) + ": " + e.what();
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < c.jobs; ++i) threads.emplace_back(worker);

  Progress progress(c.progress, st.shard_runs, st.resumed);
  std::string jsonl_buf, csv_buf;
  auto last_flush = std::chrono::steady_clock::now();
  auto flush = [&] {
    // JSON Lines first: a kill between the two leaves the CSV behind, and the restart cuts both
    // to the rows they share.
    jsonl.write_all(jsonl_buf);
    csv.write_all(csv_buf);
    jsonl_buf.clear();
    csv_buf.clear();
    last_flush = std::chrono::steady_clock::now();
  };
  while (true) {
    std::unique_lock<std::mutex> lock(mu);
    if (written >= st.shard_runs || failed.load()) break;
    cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return ring[static_cast<std::size_t>(written % window)].has_value() || failed.load(); });
    bool advanced = false;
    while (written < st.shard_runs && ring[static_cast<std::size_t>(written % window)].has_value()) {
      auto& slot = ring[static_cast<std::size_t>(written % window)];
      jsonl_buf += slot->jsonl;
      csv_buf += slot->csv;
      slot.reset();
      ++written;
      advanced = true;
    }
    const std::int64_t done = written;
    lock.unlock();
    if (advanced) cv.notify_all();
    if (jsonl_buf.size() >= kFlushBytes || std::chrono::steady_clock::now() - last_flush >= kFlushEvery) flush();
    progress.update(done);
  }
  for (auto& t : threads) t.join();
  flush();
  if (out_of_memory) throw std::bad_alloc();
  if (failed.load()) throw std::runtime_error(failure);
  st.ran = written - st.resumed;
  progress.update(written, true);
  st.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

SweepRows read_sweep_rows(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  SweepRows out;
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(path + ": empty; expected an hcsim sweep results file");
  out.header = json::parse(line, nullptr, false);
  if (out.header.is_discarded() || !out.header.is_object() || out.header.value("format", "") != kFormat) {
    throw std::runtime_error(path + ":1: not an hcsim sweep results file (no {\"format\": \"hcsim-sweep\"} header)");
  }
  std::int64_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (in.eof()) break;  // a torn last row
    json row = json::parse(line, nullptr, false);
    if (row.is_discarded() || !row.is_object() || !row.contains("run")) throw std::runtime_error(path + ":" + std::to_string(line_no) + ": not a result row");
    out.rows.push_back(std::move(row));
  }
  return out;
}

void merge_sweeps(const std::vector<std::string>& shard_prefixes, const std::string& out_prefix) {
  if (shard_prefixes.empty()) throw std::runtime_error("merge: no shard outputs given");
  struct Shard {
    std::string prefix;
    std::string header_line;
    json header;
    std::vector<std::string> jsonl_rows, csv_rows;
    std::string csv_header;
  };
  std::vector<Shard> shards;
  std::string digest;
  std::int64_t runs = -1;
  for (const std::string& prefix : shard_prefixes) {
    Shard sh;
    sh.prefix = prefix;
    std::ifstream j(prefix + ".jsonl", std::ios::binary), c(prefix + ".csv", std::ios::binary);
    if (!j) throw std::runtime_error(prefix + ".jsonl: cannot open");
    if (!c) throw std::runtime_error(prefix + ".csv: cannot open");
    std::string line;
    std::getline(j, line);
    sh.header_line = line;
    sh.header = json::parse(line, nullptr, false);
    if (sh.header.is_discarded() || !sh.header.is_object() || sh.header.value("format", "") != kFormat) {
      throw std::runtime_error(prefix + ".jsonl:1: not an hcsim sweep results file");
    }
    if (digest.empty()) {
      digest = sh.header.value("grid_digest", "");
      runs = sh.header.value("runs", std::int64_t{-1});
    } else if (sh.header.value("grid_digest", "") != digest) {
      throw std::runtime_error(prefix + ".jsonl: a shard of another grid (digest " + sh.header.value("grid_digest", "") + ", not " + digest + ")");
    }
    while (std::getline(j, line) && !j.eof()) sh.jsonl_rows.push_back(line);
    std::getline(c, sh.csv_header);
    while (std::getline(c, line) && !c.eof()) sh.csv_rows.push_back(line);
    if (sh.csv_rows.size() != sh.jsonl_rows.size()) {
      throw std::runtime_error(prefix + ": the .jsonl holds " + std::to_string(sh.jsonl_rows.size()) + " rows and the .csv " +
                               std::to_string(sh.csv_rows.size()) + "; rerun that shard's sweep to finish it");
    }
    shards.push_back(std::move(sh));
  }
  HCSIM_ASSERT(runs >= 0);
  // By run number: each exactly once.
  std::vector<std::pair<std::size_t, std::size_t>> at(static_cast<std::size_t>(runs), {SIZE_MAX, 0});
  for (std::size_t s = 0; s < shards.size(); ++s) {
    if (shards[s].csv_header != shards[0].csv_header) throw std::runtime_error(shards[s].prefix + ".csv: its columns differ from " + shards[0].prefix + ".csv's");
    for (std::size_t r = 0; r < shards[s].jsonl_rows.size(); ++r) {
      const json row = json::parse(shards[s].jsonl_rows[r], nullptr, false);
      const std::int64_t run = row.is_object() ? row.value("run", std::int64_t{-1}) : -1;
      if (run < 0 || run >= runs) throw std::runtime_error(shards[s].prefix + ".jsonl:" + std::to_string(r + 2) + ": not a row of this grid");
      auto& slot = at[static_cast<std::size_t>(run)];
      if (slot.first != SIZE_MAX) {
        throw std::runtime_error("run " + std::to_string(run) + " is in both " + shards[slot.first].prefix + " and " + shards[s].prefix + " (overlapping shards?)");
      }
      slot = {s, r};
    }
  }
  std::int64_t missing = 0;
  std::int64_t first_missing = -1;
  for (std::int64_t run = 0; run < runs; ++run) {
    if (at[static_cast<std::size_t>(run)].first == SIZE_MAX) {
      if (first_missing < 0) first_missing = run;
      ++missing;
    }
  }
  if (missing > 0) {
    throw std::runtime_error(std::to_string(missing) + " of " + std::to_string(runs) + " runs are in no shard (the first: run " + std::to_string(first_missing) +
                             "); a shard is missing or unfinished");
  }
  // The unsharded header: the shard's as written (key order kept), less its shard.
  ordered_json header = ordered_json::parse(shards[0].header_line);
  header.erase("shard");
  std::string jsonl = header.dump() + "\n";
  std::string csv = shards[0].csv_header + "\n";
  const std::string jsonl_path = out_prefix + ".jsonl", csv_path = out_prefix + ".csv";
  for (const std::string& path : {jsonl_path, csv_path}) {
    if (::access(path.c_str(), F_OK) == 0) cut_to(path, 0);
  }
  AppendFile jf(jsonl_path), cf(csv_path);
  for (const auto& [s, r] : at) {
    jsonl += shards[s].jsonl_rows[r] + "\n";
    csv += shards[s].csv_rows[r] + "\n";
    if (jsonl.size() >= kFlushBytes) {
      jf.write_all(jsonl);
      cf.write_all(csv);
      jsonl.clear();
      csv.clear();
    }
  }
  jf.write_all(jsonl);
  cf.write_all(csv);
}

void write_summary(const SweepRows& rows, std::ostream& out, const std::string& markdown_path) {
  struct Group {
    std::int64_t runs = 0, hangs = 0, starved = 0, l3_lost_tokens = 0, kv_bytes_discarded = 0;
    std::map<std::string, std::int64_t> kinds;
    std::vector<std::int64_t> p50_us, p99_us;
  };
  // (policy, variant) -> point label -> group, both in first-appearance (run) order.
  std::vector<std::string> table_order;
  std::map<std::string, std::vector<std::string>> point_order;
  std::map<std::string, std::map<std::string, Group>> tables;
  std::map<std::string, std::string> table_variant;
  for (const json& r : rows.rows) {
    const std::string table = r.value("policy", "?") + " / " + r.value("variant", "?");
    table_variant.emplace(table, r.value("variant", "?"));
    std::string point;
    for (const auto& [name, value] : r["axes"].items()) {
      if (name == "variant" || name == "/policy/name") continue;
      point += (point.empty() ? "" : ", ") + name + " = " + value_label(value);
    }
    if (point.empty()) point = "(base)";
    if (!tables.contains(table)) table_order.push_back(table);
    auto& points = tables[table];
    if (!points.contains(point)) point_order[table].push_back(point);
    Group& gr = points[point];
    ++gr.runs;
    if (r.value("hang", false)) {
      ++gr.hangs;
      ++gr.kinds[r.value("verdict", "?")];
    }
    gr.starved += r.value("starved", std::int64_t{0});
    gr.l3_lost_tokens += r.value("l3_lost_tokens", std::int64_t{0});
    gr.kv_bytes_discarded += r.value("kv_bytes_discarded", std::int64_t{0});
    if (r.value("scheduled", std::int64_t{0}) > 0) {
      gr.p50_us.push_back(r.value("sched_p50_us", std::int64_t{0}));
      gr.p99_us.push_back(r.value("sched_p99_us", std::int64_t{0}));
    }
  }
  std::ostringstream md;
  md << "# Sweep summary\n\n" << rows.rows.size() << " runs, grid digest " << rows.header.value("grid_digest", "?") << ". Hang rate with its 95% Wilson interval; "
     << "time to schedule is the median over runs of each run's p50 and the p99 over runs of each run's p99; waste is per run.\n";
  for (const std::string& table : table_order) {
    md << "\n## " << table << "\n\n";
    std::string error;
    if (const auto fixes = parse_variant(table_variant[table], &error)) md << upstream_label(*fixes) << ".\n\n";
    md << "| point | runs | hangs | hang rate | 95% interval | kinds | sched p50 (ms) | sched p99 (ms) | starved/run | L3 tokens lost/run | KV MiB discarded/run |\n";
    md << "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|\n";
    for (const std::string& point : point_order[table]) {
      Group& gr = tables[table][point];
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
  if (!markdown_path.empty()) {
    std::ofstream f(markdown_path);
    if (!(f << md.str())) throw std::runtime_error(markdown_path + ": cannot write");
  }
}

}  // namespace hcsim
