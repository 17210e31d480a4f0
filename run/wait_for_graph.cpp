#include "run/wait_for_graph.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/strong_components.hpp>

#include "policy/assert.h"
#include "run/xml_escape.h"

namespace hcsim {

namespace {

constexpr const char* kRed = "#d62728";
constexpr const char* kGrey = "#8c8c8c";
constexpr std::size_t kNoActor = static_cast<std::size_t>(-1);
constexpr std::size_t kLineChars = 30;     // node labels wrap at about this many characters
constexpr std::size_t kCaptionChars = 24;  // and a rank's caption of idle actors at this many

enum class NodeKind : std::uint8_t { kActor, kCollective, kStorage };

struct Node {
  NodeKind kind = NodeKind::kActor;
  std::string id;
  std::string label;
  int rank = -1;                 // the rank's box it is drawn in; -1: outside every box
  std::size_t actor = kNoActor;  // index in Verdict::actors
  bool culprit = false;
  bool shown = true;             // false: an idle actor, folded into its rank's note
};

struct Edge {
  std::size_t from = 0;
  std::size_t to = 0;
  std::string label;
  bool culprit = false;
  bool dashed = false;  // waits on something that has not happened: a member that never came
};

// An open collective some actor is blocked in.
struct Collective {
  Group group = Group::kTp;
  std::uint64_t seq = 0;
  std::size_t node = 0;
  const OpenCollective* open = nullptr;  // null: the ledger no longer knows it
  std::vector<std::size_t> waiters;      // actor indices, in verdict order
  std::vector<int> members;              // the communicator's ranks
};

// A DOT string literal; a '\n' in `s` becomes a line break of the label.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// `text` broken at spaces into lines of at most `width` characters (a longer word stands alone).
std::string wrapped(const std::string& text, std::size_t width) {
  std::string out, line;
  std::istringstream words(text);
  for (std::string w; words >> w;) {
    if (!line.empty() && line.size() + 1 + w.size() > width) {
      out += line + '\n';
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w;
  }
  return out + line;
}

// "forward(2100)", "all_reduce(MAX, 2)".
std::string entered_what(CollectiveOp op, std::int64_t size) {
  const std::string name(collective_op_name(op));
  if (!name.empty() && name.back() == ')') return name.substr(0, name.size() - 1) + ", " + std::to_string(size) + ")";
  return name + "(" + std::to_string(size) + ")";
}

// Why an idle actor is idle, for its rank's note.
const char* idle_reason(WaitKind w) {
  switch (w) {
    case WaitKind::kSignal: return "waiting for work";
    case WaitKind::kSleep: return "sleeping";
    case WaitKind::kRunnable: return "runnable";
    case WaitKind::kFinished: return "finished";
    default: return "idle";
  }
}

// As describe_wait writes times: "15.980ms".
std::string since_text(TimeNs t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fms", static_cast<double>(t) / 1e6);
  return buf;
}

std::string actor_short_name(const ActorState& a) {
  const std::string name(actor_name(a.actor));
  return a.index > 0 ? name + " " + std::to_string(a.index) : name;
}

// The graph as it is built: nodes found by id, in creation order, and the edges between them.
struct Graph {
  const std::vector<ActorState>& actors;
  std::vector<Node> nodes;
  std::vector<Edge> edges;
  std::map<std::string, std::size_t> by_id;

  // The node called `id`, made if it is new.
  std::size_t node(NodeKind kind, const std::string& id, int rank) {
    const auto it = by_id.find(id);
    if (it != by_id.end()) return it->second;
    nodes.push_back(Node{kind, id, id, rank});
    by_id.emplace(id, nodes.size() - 1);
    return nodes.size() - 1;
  }
  const ActorState& actor_of(std::size_t n) const { return actors[nodes[n].actor]; }
  // The node of the actor that raises the signal `a` waits for, if there is one.
  std::optional<std::size_t> producer_of(const ActorState& a) const {
    const auto it = by_id.find(actor_label(a.rank, a.producer, 0));
    if (it == by_id.end()) return std::nullopt;
    return it->second;
  }
};

// One node per actor, labelled with what it waits on.
void add_actor_nodes(Graph& g) {
  for (std::size_t i = 0; i < g.actors.size(); ++i) {
    const ActorState& a = g.actors[i];
    const std::size_t n = g.node(NodeKind::kActor, actor_label(a), a.rank);
    g.nodes[n].actor = i;
    // In a collective, the collective's node names the group and sequence: the actor says what it entered.
    // A send's wait (wait_sends) entered nothing: it waits for the receiver to take what it sent.
    const std::string in_collective = a.op == CollectiveOp::kSend ? "waiting for its send\nto be received" : "in " + entered_what(a.op, a.size);
    g.nodes[n].label = actor_short_name(a) + "\n" +
                       (a.wait == WaitKind::kCollective ? in_collective + "\nsince " + since_text(a.since_ns) : wrapped(describe_wait(a), kLineChars));
    if (a.wait == WaitKind::kDied) g.nodes[n].culprit = true;
  }
}

// The open collective (group, seq), added to `open` with its node if it is not there yet.
Collective& open_collective(Graph& g, std::vector<Collective>& open, const CollectiveLedger& collectives, Group group, std::uint64_t seq) {
  for (Collective& o : open) {
    if (o.group == group && o.seq == seq) return o;
  }
  const std::string id = std::string(group_name(group)) + " seq " + std::to_string(seq);
  open.push_back(Collective{group, seq, g.node(NodeKind::kCollective, id, -1), collectives.find_open(group, seq), {}, collectives.members(group)});
  return open.back();
}

// An actor blocked in an L3 call: an edge to its rank's L3.
void add_storage_wait(Graph& g, const Verdict& verdict, std::size_t from, const ActorState& a) {
  const std::string l3 = "L3 (rank " + std::to_string(a.rank) + ")";
  const std::size_t to = g.node(NodeKind::kStorage, l3, a.rank);
  // The call that never returns is the culprit of a stall; so is every L3 call a starved run waits on.
  const bool culprit = a.never_completes || verdict.kind == HangKind::kStarvation;
  g.edges.push_back(Edge{from, to, std::string(storage_op_name(a.storage_op)) + (a.never_completes ? ", never completes" : ""), culprit, false});
  g.nodes[to].culprit = g.nodes[to].culprit || culprit;
  g.nodes[from].culprit = g.nodes[from].culprit || culprit;
}

// Who waits on what: an actor on its collective, its signal's producer, or its rank's L3. Returns the
// open collectives, whose edges come later, once all their waiters are known.
std::vector<Collective> add_waits(Graph& g, const Verdict& verdict, const CollectiveLedger& collectives) {
  std::vector<Collective> open;
  for (std::size_t i = 0; i < g.actors.size(); ++i) {
    const ActorState& a = g.actors[i];
    const std::size_t from = g.by_id.at(actor_label(a));
    switch (a.wait) {
      case WaitKind::kCollective: open_collective(g, open, collectives, a.group, a.seq).waiters.push_back(i); break;
      case WaitKind::kSignal:
        if (const auto producer = g.producer_of(a)) g.edges.push_back(Edge{from, *producer, a.signal_name, false, false});
        break;
      case WaitKind::kStorage: add_storage_wait(g, verdict, from, a); break;
      default: break;
    }
  }
  return open;
}

// Distinct (op, size) a collective's members entered, in arrival order, with the ranks that entered each.
using EnteredKinds = std::vector<std::pair<std::string, std::vector<int>>>;

EnteredKinds entered_kinds(const Graph& g, const Collective& c) {
  std::vector<CollectiveEntry> entries;
  if (c.open != nullptr) {
    entries = c.open->entries;
  } else {  // the ledger forgot it: its waiters say what they entered
    for (const std::size_t w : c.waiters) entries.push_back(CollectiveEntry{g.actors[w].rank, g.actors[w].op, g.actors[w].size, g.actors[w].since_ns});
  }
  EnteredKinds kinds;
  for (const CollectiveEntry& e : entries) {
    const std::string what = entered_what(e.op, e.size);
    auto it = kinds.begin();
    while (it != kinds.end() && it->first != what) ++it;
    if (it == kinds.end()) {
      kinds.emplace_back(what, std::vector<int>{});
      it = kinds.end() - 1;
    }
    it->second.push_back(e.rank);
  }
  return kinds;
}

// The majority: entered by strictly more ranks than any other; a tie has none (""), so all are odd.
std::string majority_of(const EnteredKinds& kinds) {
  std::string majority;
  std::size_t most = 0;
  bool tie = false;
  for (const auto& [what, ranks] : kinds) {
    if (ranks.size() > most) {
      most = ranks.size();
      majority = what;
      tie = false;
    } else if (ranks.size() == most) {
      tie = true;
    }
  }
  if (tie) majority.clear();
  return majority;
}

// "tp_cpu_group seq 49\nmismatch\nrank 0: forward(52)\nrank 1: forward(2100)".
std::string collective_label(const Node& cn, const EnteredKinds& kinds) {
  std::string label = cn.id + (kinds.size() > 1 ? "\nmismatch" : "");
  for (const auto& [what, ranks] : kinds) {
    label += '\n';
    label += ranks.size() == 1 ? "rank " + std::to_string(ranks[0]) : std::to_string(ranks.size()) + " ranks";
    label += ": " + what;
  }
  return label;
}

// Dashed edges to the members that have not entered (an actor of the waiters' kind on a rank with
// no entry), and their ranks in the collective's label.
void add_missing_members(Graph& g, const Collective& c, bool culprit) {
  std::vector<int> missing;
  const ActorKind member = g.actors[c.waiters.front()].actor;
  for (const ActorState& b : g.actors) {
    if (b.actor != member || c.open->entered(b.rank)) continue;
    if (std::find(c.members.begin(), c.members.end(), b.rank) == c.members.end()) continue;  // another group's rank
    const std::size_t to = g.by_id.at(actor_label(b));
    g.edges.push_back(Edge{c.node, to, "has not entered seq " + std::to_string(c.seq), culprit, true});
    if (culprit) g.nodes[to].culprit = true;
    if (missing.empty() || missing.back() != b.rank) missing.push_back(b.rank);
  }
  if (missing.empty()) return;
  std::string ranks;
  for (const int r : missing) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  g.nodes[c.node].label += "\nnot entered: rank" + std::string(missing.size() > 1 ? "s " : " ") + ranks;
}

// A collective: what its members entered, the odd ones out, and the members that never came.
void add_collective(Graph& g, const Verdict& verdict, const Collective& c) {
  const bool culprit = verdict.has_collective && verdict.group == c.group && verdict.seq == c.seq;
  const EnteredKinds kinds = entered_kinds(g, c);
  const std::string majority = majority_of(kinds);
  const bool mismatch = kinds.size() > 1;
  g.nodes[c.node].culprit = culprit;
  g.nodes[c.node].label = collective_label(g.nodes[c.node], kinds);
  for (const std::size_t w : c.waiters) {
    const ActorState& a = g.actors[w];
    const std::string what = entered_what(a.op, a.size);
    const bool odd = mismatch && what != majority;
    const std::size_t from = g.by_id.at(actor_label(a));
    g.edges.push_back(Edge{from, c.node, odd ? "entered " + what : "", culprit && odd, false});
    if (culprit && odd) g.nodes[from].culprit = true;
  }
  if (c.open == nullptr || c.waiters.empty()) return;
  add_missing_members(g, c, culprit);
}

// A wait cycle (a strongly connected component of more than one node, or a self-loop) is a
// culprit wherever it is.
void mark_wait_cycles(Graph& g) {
  using BoostGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
  BoostGraph bg(g.nodes.size());
  for (const Edge& e : g.edges) boost::add_edge(e.from, e.to, bg);
  std::vector<std::size_t> component(g.nodes.size());
  const std::size_t components = g.nodes.empty() ? 0 : boost::strong_components(bg, component.data());
  std::vector<std::size_t> component_size(components, 0);
  for (const std::size_t c : component) ++component_size[c];
  for (Edge& e : g.edges) {
    if (component[e.from] == component[e.to] && (e.from == e.to || component_size[component[e.from]] > 1)) {
      e.culprit = true;
      g.nodes[e.from].culprit = g.nodes[e.to].culprit = true;
    }
  }
}

// An actor blocked somewhere that matters: a collective, L3, a signal nobody live can raise; or
// died, or is a culprit.
bool blocked_where_it_matters(const Graph& g, const Node& n) {
  const ActorState& a = g.actors[n.actor];
  bool matters = n.culprit || a.wait == WaitKind::kCollective || a.wait == WaitKind::kStorage || a.wait == WaitKind::kDied;
  if (a.wait == WaitKind::kSignal) {
    const auto producer = g.producer_of(a);
    matters = matters || !producer || g.actor_of(*producer).wait == WaitKind::kDied || g.actor_of(*producer).wait == WaitKind::kFinished;
  }
  return matters;
}

// Folding: an actor is shown if it is blocked where it matters or is what a shown node waits on.
// The rest wait for work from a shown actor, sleep, run or have finished: idle.
void fold_idle_actors(Graph& g) {
  for (Node& n : g.nodes) {
    if (n.kind == NodeKind::kActor) n.shown = blocked_where_it_matters(g, n);
  }
  std::size_t passes = 0;
  for (bool grew = true; grew;) {  // each pass shows at least one more node or stops
    HCSIM_ASSERT(++passes <= g.nodes.size() + 1);
    grew = false;
    for (const Edge& e : g.edges) {
      if (g.nodes[e.from].shown && !g.nodes[e.to].shown) g.nodes[e.to].shown = grew = true;
    }
  }
}

void write_node(std::ostream& os, const Graph& g, const Node& n, const char* indent) {
  os << indent << quoted(n.id) << " [label=" << quoted(n.label);
  if (n.kind == NodeKind::kCollective) os << ", shape=box, style=\"filled,bold\", fillcolor=\"#fff3d6\"";
  if (n.kind == NodeKind::kStorage) os << ", shape=cylinder";
  if (n.kind == NodeKind::kActor && g.actors[n.actor].wait == WaitKind::kDied) os << ", style=\"rounded,filled\", fillcolor=\"#fde0dd\"";
  if (n.culprit) {
    os << ", color=\"" << kRed << "\", fontcolor=\"" << kRed << "\", penwidth=2.5";
  } else if (!n.shown) {
    os << ", color=\"" << kGrey << "\", fontcolor=\"" << kGrey << "\"";
  }
  os << "];\n";
}

// The headline, and under it in small grey what the colours and captions mean (an HTML-like label).
std::string title_label(const Graph& g, const Verdict& verdict, const WaitForGraphOptions& options) {
  bool any_culprit = false, any_folded = false;
  for (const Node& n : g.nodes) {
    any_culprit = any_culprit || n.culprit;
    any_folded = any_folded || !n.shown;
  }
  for (const Edge& e : g.edges) any_culprit = any_culprit || e.culprit;
  std::string legend;
  if (any_culprit) legend = "red: the culprit";
  if (any_folded) legend += std::string(legend.empty() ? "" : "; ") + (options.all_actors ? "grey: idle actors" : "grey text in a rank's box: its idle actors, folded away");
  std::string title = "<" + xml_escaped(verdict.hang() ? verdict.headline : "complete");
  if (!legend.empty()) title += "<br/><font point-size=\"10\" color=\"#555555\">" + xml_escaped(legend) + "</font>";
  title += ">";
  return title;
}

// A rank's idle actors, folded: their names grouped by why they are idle.
struct FoldedActors {
  std::vector<std::pair<std::string, std::string>> by_reason;  // (reason, names), reasons in first-seen order
  std::size_t count = 0;
};

void fold(FoldedActors& folded, const ActorState& a) {
  ++folded.count;
  auto it = folded.by_reason.begin();
  while (it != folded.by_reason.end() && it->first != idle_reason(a.wait)) ++it;
  if (it == folded.by_reason.end()) {
    folded.by_reason.emplace_back(idle_reason(a.wait), "");
    it = folded.by_reason.end() - 1;
  }
  it->second += (it->second.empty() ? "" : ", ") + actor_short_name(a);
}

// An L3 beside the actors blocked in it: a rank's box stays one row deep, and Graphviz keeps the
// boxes in rank order.
void write_storage_rows(std::ostream& out, const Graph& g, const std::vector<std::size_t>& members, const WaitForGraphOptions& options) {
  for (const std::size_t i : members) {
    if (g.nodes[i].kind != NodeKind::kStorage) continue;
    std::string row;
    for (const Edge& e : g.edges) {
      if (e.to == i && (g.nodes[e.from].shown || options.all_actors)) row.append(" ").append(quoted(g.nodes[e.from].id)).append(";");
    }
    if (!row.empty()) out << "    { rank=same;" << row << " " << quoted(g.nodes[i].id) << "; }\n";
  }
}

// "2 idle actors", then each reason's names, wrapped to the caption's width.
std::vector<std::string> folded_lines(const FoldedActors& folded) {
  std::vector<std::string> lines = {std::to_string(folded.count) + (folded.count == 1 ? " idle actor" : " idle actors")};
  for (const auto& [reason, names] : folded.by_reason) {
    const std::string one_line = names + ": " + reason;
    std::istringstream wrapped_lines(one_line.size() <= kCaptionChars ? one_line : wrapped(names + ":", kCaptionChars) + "\n" + reason);
    for (std::string l; std::getline(wrapped_lines, l);) lines.push_back(l);
  }
  return lines;
}

// The rank's label, with its folded actors as a caption under the name; where no actor is shown,
// a note node holds them instead.
void write_rank_label(std::ostream& out, int rank, const FoldedActors& folded, std::size_t shown_count) {
  std::string caption = "rank " + std::to_string(rank);
  if (folded.count > 0) {
    const std::vector<std::string> lines = folded_lines(folded);
    if (shown_count == 0) {
      std::string note;
      for (const std::string& l : lines) note += (note.empty() ? "" : "\n") + l;
      out << "    " << quoted(caption + " folded") << " [shape=note, style=dashed, color=\"" << kGrey << "\", fontcolor=\"#555555\", fontsize=9, label="
          << quoted(note) << "];\n";
    } else {
      caption = "<" + caption + "<br/><font point-size=\"9\" color=\"#555555\">";
      for (std::size_t l = 0; l < lines.size(); ++l) caption += (l == 0 ? "" : "<br/>") + xml_escaped(lines[l]);
      caption += "</font>>";
    }
  }
  out << "    label=" << (caption.front() == '<' ? caption : quoted(caption)) << ";\n";
}

void write_rank_box(std::ostream& out, const Graph& g, int rank, const std::vector<std::size_t>& members, const WaitForGraphOptions& options) {
  out << "  subgraph cluster_rank_" << rank << " {\n";
  out << "    style=rounded; color=\"#9e9e9e\"; fontsize=12; labeljust=l;\n";
  FoldedActors folded;
  std::size_t shown_count = 0;
  for (const std::size_t i : members) {
    const Node& n = g.nodes[i];
    if (n.shown || options.all_actors) {
      write_node(out, g, n, "    ");
      ++shown_count;
    } else {
      fold(folded, g.actors[n.actor]);
    }
  }
  write_storage_rows(out, g, members, options);
  write_rank_label(out, rank, folded, shown_count);
  out << "  }\n";
}

void write_edge(std::ostream& out, const Graph& g, const Edge& e, const WaitForGraphOptions& options) {
  const bool idle = !g.nodes[e.from].shown || !g.nodes[e.to].shown;
  if (idle && !options.all_actors) return;
  out << "  " << quoted(g.nodes[e.from].id) << " -> " << quoted(g.nodes[e.to].id) << " [";
  const char* sep = "";
  if (!e.label.empty()) {
    out << "label=" << quoted("  " + e.label);  // two spaces: clear of a slanted edge
    sep = ", ";
  }
  if (e.culprit) {
    out << sep << "color=\"" << kRed << "\", fontcolor=\"" << kRed << "\", penwidth=2.5";
    sep = ", ";
  } else if (idle) {
    out << sep << "color=\"" << kGrey << "\", fontcolor=\"" << kGrey << "\"";
    sep = ", ";
  }
  if (e.dashed) out << sep << "style=dashed";
  out << "];\n";
}

// The DOT: one box per rank, in rank order; collectives outside the boxes.
std::string write_dot(const Graph& g, const Verdict& verdict, const WaitForGraphOptions& options) {
  std::map<int, std::vector<std::size_t>> by_rank;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].rank >= 0) by_rank[g.nodes[i].rank].push_back(i);
  }
  std::ostringstream out;
  out << "digraph wait_for {\n";
  out << "  graph [label=" << title_label(g, verdict, options) << ", labelloc=t, fontname=\"Helvetica\", fontsize=13, newrank=true, "
      << "nodesep=0.35, ranksep=0.6, splines=true];\n";
  out << "  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10, margin=\"0.12,0.06\"];\n";
  out << "  edge [fontname=\"Helvetica\", fontsize=9];\n";
  for (const auto& [rank, members] : by_rank) write_rank_box(out, g, rank, members, options);
  for (const Node& n : g.nodes) {
    if (n.rank < 0) write_node(out, g, n, "  ");
  }
  for (const Edge& e : g.edges) write_edge(out, g, e, options);
  out << "}\n";
  HCSIM_ASSERT(out.good());
  return out.str();
}

}  // namespace

WaitedCollectives::WaitedCollectives(const Verdict& verdict, const CollectiveLedger& ledger) : mismatch_(ledger.first_mismatch()) {
  for (const ActorState& a : verdict.actors) {
    if (a.wait != WaitKind::kCollective) continue;
    const bool seen = std::any_of(kept_.begin(), kept_.end(), [&](const Kept& k) { return k.group == a.group && k.seq == a.seq; });
    if (seen) continue;
    Kept k{a.group, a.seq, std::nullopt, ledger.members(a.group)};
    if (const OpenCollective* open = ledger.find_open(a.group, a.seq)) k.open = *open;
    kept_.push_back(std::move(k));
  }
}

const OpenCollective* WaitedCollectives::oldest_open(Group g, std::uint64_t& seq) const {
  const Kept* oldest = nullptr;
  for (const Kept& k : kept_) {
    if (k.group == g && k.open && (oldest == nullptr || k.seq < oldest->seq)) oldest = &k;
  }
  if (oldest == nullptr) return nullptr;
  seq = oldest->seq;
  return &*oldest->open;
}

const OpenCollective* WaitedCollectives::find_open(Group g, std::uint64_t seq) const {
  for (const Kept& k : kept_) {
    if (k.group == g && k.seq == seq) return k.open ? &*k.open : nullptr;
  }
  return nullptr;
}

std::vector<Group> WaitedCollectives::communicators() const {
  std::vector<Group> out;
  for (const Kept& k : kept_) {
    if (std::find(out.begin(), out.end(), k.group) == out.end()) out.push_back(k.group);
  }
  return out;
}

std::vector<int> WaitedCollectives::members(Group g) const {
  for (const Kept& k : kept_) {
    if (k.group == g) return k.members;
  }
  return {};
}

std::string wait_for_graph_dot(const Verdict& verdict, const CollectiveLedger& collectives, const WaitForGraphOptions& options) {
  Graph g{verdict.actors, {}, {}, {}};
  add_actor_nodes(g);
  const std::vector<Collective> open = add_waits(g, verdict, collectives);
  for (const Collective& c : open) add_collective(g, verdict, c);
  mark_wait_cycles(g);
  fold_idle_actors(g);
  return write_dot(g, verdict, options);
}

}  // namespace hcsim
