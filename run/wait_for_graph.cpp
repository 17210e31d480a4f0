#include "run/wait_for_graph.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <sstream>
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
  Group group = Group::kScheduler;
  std::uint64_t seq = 0;
  std::size_t node = 0;
  const OpenCollective* open = nullptr;  // null: the ledger no longer knows it
  std::vector<std::size_t> waiters;      // actor indices, in verdict order
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

}  // namespace

std::string wait_for_graph_dot(const Verdict& verdict, const CollectiveLedger& collectives, const WaitForGraphOptions& options) {
  const std::vector<ActorState>& actors = verdict.actors;
  std::vector<Node> nodes;
  std::vector<Edge> edges;
  std::map<std::string, std::size_t> by_id;
  auto node = [&](NodeKind kind, const std::string& id, int rank) {
    const auto it = by_id.find(id);
    if (it != by_id.end()) return it->second;
    nodes.push_back(Node{kind, id, id, rank});
    by_id.emplace(id, nodes.size() - 1);
    return nodes.size() - 1;
  };
  for (std::size_t i = 0; i < actors.size(); ++i) {
    const ActorState& a = actors[i];
    const std::size_t n = node(NodeKind::kActor, actor_label(a), a.rank);
    nodes[n].actor = i;
    // In a collective, the collective's node names the group and sequence: the actor says what it entered.
    nodes[n].label = actor_short_name(a) + "\n" +
                     (a.wait == WaitKind::kCollective ? "in " + entered_what(a.op, a.size) + "\nsince " + since_text(a.since_ns)
                                                       : wrapped(describe_wait(a), kLineChars));
    if (a.wait == WaitKind::kDied) nodes[n].culprit = true;
  }

  // Who waits on what: an actor on its collective, its signal's producer, or its rank's L3.
  std::vector<Collective> open;
  for (std::size_t i = 0; i < actors.size(); ++i) {
    const ActorState& a = actors[i];
    const std::size_t from = by_id.at(actor_label(a));
    switch (a.wait) {
      case WaitKind::kCollective: {
        Collective* c = nullptr;
        for (Collective& o : open) {
          if (o.group == a.group && o.seq == a.seq) c = &o;
        }
        if (c == nullptr) {
          const std::string id = std::string(group_name(a.group)) + " seq " + std::to_string(a.seq);
          open.push_back(Collective{a.group, a.seq, node(NodeKind::kCollective, id, -1), collectives.find_open(a.group, a.seq), {}});
          c = &open.back();
        }
        c->waiters.push_back(i);
        break;
      }
      case WaitKind::kSignal: {
        const auto producer = by_id.find(actor_label(a.rank, a.producer, 0));
        if (producer != by_id.end()) edges.push_back(Edge{from, producer->second, a.signal_name, false, false});
        break;
      }
      case WaitKind::kStorage: {
        const std::string l3 = "L3 (rank " + std::to_string(a.rank) + ")";
        const std::size_t to = node(NodeKind::kStorage, l3, a.rank);
        // The call that never returns is the culprit of a stall; so is every L3 call a starved run waits on.
        const bool culprit = a.never_completes || verdict.kind == HangKind::kStarvation;
        edges.push_back(Edge{from, to, std::string(storage_op_name(a.storage_op)) + (a.never_completes ? ", never completes" : ""), culprit, false});
        nodes[to].culprit = nodes[to].culprit || culprit;
        nodes[from].culprit = nodes[from].culprit || culprit;
        break;
      }
      default: break;
    }
  }

  // Each collective: what its members entered, the odd ones out, and the members that never came.
  for (const Collective& c : open) {
    const bool culprit = verdict.has_collective && verdict.group == c.group && verdict.seq == c.seq;
    std::vector<CollectiveEntry> entries;
    if (c.open != nullptr) {
      entries = c.open->entries;
    } else {
      for (const std::size_t w : c.waiters) entries.push_back(CollectiveEntry{actors[w].rank, actors[w].op, actors[w].size, actors[w].since_ns});
    }
    // Distinct (op, size) in arrival order, with the ranks that entered each.
    std::vector<std::pair<std::string, std::vector<int>>> kinds;
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
    // The majority: entered by strictly more ranks than any other; a tie has none, so all are odd.
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
    const bool mismatch = kinds.size() > 1;

    Node& cn = nodes[c.node];
    cn.culprit = culprit;
    cn.label = cn.id + (mismatch ? "\nmismatch" : "");
    for (const auto& [what, ranks] : kinds) {
      cn.label += '\n';
      cn.label += ranks.size() == 1 ? "rank " + std::to_string(ranks[0]) : std::to_string(ranks.size()) + " ranks";
      cn.label += ": " + what;
    }
    for (const std::size_t w : c.waiters) {
      const ActorState& a = actors[w];
      const std::string what = entered_what(a.op, a.size);
      const bool odd = mismatch && what != majority;
      const std::size_t from = by_id.at(actor_label(a));
      edges.push_back(Edge{from, c.node, odd ? "entered " + what : "", culprit && odd, false});
      if (culprit && odd) nodes[from].culprit = true;
    }
    if (c.open == nullptr || c.waiters.empty()) continue;
    // A member that has not entered: an actor of the waiters' kind on a rank with no entry.
    std::vector<int> missing;
    const ActorKind member = actors[c.waiters.front()].actor;
    for (const ActorState& b : actors) {
      if (b.actor != member || c.open->entered(b.rank)) continue;
      const std::size_t to = by_id.at(actor_label(b));
      edges.push_back(Edge{c.node, to, "has not entered seq " + std::to_string(c.seq), culprit, true});
      if (culprit) nodes[to].culprit = true;
      if (missing.empty() || missing.back() != b.rank) missing.push_back(b.rank);
    }
    if (!missing.empty()) {
      std::string ranks;
      for (const int r : missing) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
      cn.label += "\nnot entered: rank" + std::string(missing.size() > 1 ? "s " : " ") + ranks;
    }
  }

  // A wait cycle (a strongly connected component of more than one node, or a self-loop) is a
  // culprit wherever it is.
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
  Graph g(nodes.size());
  for (const Edge& e : edges) boost::add_edge(e.from, e.to, g);
  std::vector<std::size_t> component(nodes.size());
  const std::size_t components = nodes.empty() ? 0 : boost::strong_components(g, component.data());
  std::vector<std::size_t> component_size(components, 0);
  for (const std::size_t c : component) ++component_size[c];
  for (Edge& e : edges) {
    if (component[e.from] == component[e.to] && (e.from == e.to || component_size[component[e.from]] > 1)) {
      e.culprit = true;
      nodes[e.from].culprit = nodes[e.to].culprit = true;
    }
  }

  // Folding: an actor is shown if it is blocked somewhere that matters (a collective, L3, a
  // signal nobody live can raise), died, is a culprit, or is what a shown node waits on. The rest
  // wait for work from a shown actor, sleep, run or have finished: idle.
  for (Node& n : nodes) {
    if (n.kind != NodeKind::kActor) continue;
    const ActorState& a = actors[n.actor];
    bool matters = n.culprit || a.wait == WaitKind::kCollective || a.wait == WaitKind::kStorage || a.wait == WaitKind::kDied;
    if (a.wait == WaitKind::kSignal) {
      const auto producer = by_id.find(actor_label(a.rank, a.producer, 0));
      matters = matters || producer == by_id.end() || actors[nodes[producer->second].actor].wait == WaitKind::kDied ||
                actors[nodes[producer->second].actor].wait == WaitKind::kFinished;
    }
    n.shown = matters;
  }
  std::size_t passes = 0;
  for (bool grew = true; grew;) {  // each pass shows at least one more node or stops
    HCSIM_ASSERT(++passes <= nodes.size() + 1);
    grew = false;
    for (const Edge& e : edges) {
      if (nodes[e.from].shown && !nodes[e.to].shown) nodes[e.to].shown = grew = true;
    }
  }

  // The DOT: one box per rank, in rank order; collectives outside the boxes.
  std::map<int, std::vector<std::size_t>> by_rank;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].rank >= 0) by_rank[nodes[i].rank].push_back(i);
  }
  auto node_line = [&](std::ostream& os, const Node& n, const char* indent) {
    os << indent << quoted(n.id) << " [label=" << quoted(n.label);
    if (n.kind == NodeKind::kCollective) os << ", shape=box, style=\"filled,bold\", fillcolor=\"#fff3d6\"";
    if (n.kind == NodeKind::kStorage) os << ", shape=cylinder";
    if (n.kind == NodeKind::kActor && actors[n.actor].wait == WaitKind::kDied) os << ", style=\"rounded,filled\", fillcolor=\"#fde0dd\"";
    if (n.culprit) {
      os << ", color=\"" << kRed << "\", fontcolor=\"" << kRed << "\", penwidth=2.5";
    } else if (!n.shown) {
      os << ", color=\"" << kGrey << "\", fontcolor=\"" << kGrey << "\"";
    }
    os << "];\n";
  };
  bool any_culprit = false, any_folded = false;
  for (const Node& n : nodes) {
    any_culprit = any_culprit || n.culprit;
    any_folded = any_folded || !n.shown;
  }
  for (const Edge& e : edges) any_culprit = any_culprit || e.culprit;

  std::ostringstream out;
  // The headline, and under it in small grey what the colours and captions mean.
  std::string legend;
  if (any_culprit) legend = "red: the culprit";
  if (any_folded) legend += std::string(legend.empty() ? "" : "; ") + (options.all_actors ? "grey: idle actors" : "grey text in a rank's box: its idle actors, folded away");
  std::string title = "<" + xml_escaped(verdict.hang() ? verdict.headline : "complete");
  if (!legend.empty()) title += "<br/><font point-size=\"10\" color=\"#555555\">" + xml_escaped(legend) + "</font>";
  title += ">";
  out << "digraph wait_for {\n";
  out << "  graph [label=" << title << ", labelloc=t, fontname=\"Helvetica\", fontsize=13, newrank=true, "
      << "nodesep=0.35, ranksep=0.6, splines=true];\n";
  out << "  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10, margin=\"0.12,0.06\"];\n";
  out << "  edge [fontname=\"Helvetica\", fontsize=9];\n";
  for (const auto& [rank, members] : by_rank) {
    out << "  subgraph cluster_rank_" << rank << " {\n";
    out << "    style=rounded; color=\"#9e9e9e\"; fontsize=12; labeljust=l;\n";
    std::vector<std::pair<std::string, std::string>> idle;  // (reason, names), reasons in first-seen order
    std::size_t idle_count = 0, shown_count = 0;
    for (const std::size_t i : members) {
      const Node& n = nodes[i];
      if (n.shown || options.all_actors) {
        node_line(out, n, "    ");
        ++shown_count;
        continue;
      }
      const ActorState& a = actors[n.actor];
      ++idle_count;
      auto it = idle.begin();
      while (it != idle.end() && it->first != idle_reason(a.wait)) ++it;
      if (it == idle.end()) {
        idle.emplace_back(idle_reason(a.wait), "");
        it = idle.end() - 1;
      }
      it->second += (it->second.empty() ? "" : ", ") + actor_short_name(a);
    }
    // An L3 beside the actors blocked in it: a rank's box stays one row deep, and Graphviz keeps
    // the boxes in rank order.
    for (const std::size_t i : members) {
      if (nodes[i].kind != NodeKind::kStorage) continue;
      std::string row;
      for (const Edge& e : edges) {
        if (e.to == i && (nodes[e.from].shown || options.all_actors)) row += " " + quoted(nodes[e.from].id) + ";";
      }
      if (!row.empty()) out << "    { rank=same;" << row << " " << quoted(nodes[i].id) << "; }\n";
    }
    // The idle actors, folded: a caption under the rank's name, or a note where no actor is shown.
    std::string caption = "rank " + std::to_string(rank);
    if (idle_count > 0) {
      std::vector<std::string> lines = {std::to_string(idle_count) + (idle_count == 1 ? " idle actor" : " idle actors")};
      for (const auto& [reason, names] : idle) {
        const std::string one_line = names + ": " + reason;
        std::istringstream wrapped_lines(one_line.size() <= kCaptionChars ? one_line : wrapped(names + ":", kCaptionChars) + "\n" + reason);
        for (std::string l; std::getline(wrapped_lines, l);) lines.push_back(l);
      }
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
    out << "  }\n";
  }
  for (const Node& n : nodes) {
    if (n.rank < 0) node_line(out, n, "  ");
  }
  for (const Edge& e : edges) {
    const bool idle = !nodes[e.from].shown || !nodes[e.to].shown;
    if (idle && !options.all_actors) continue;
    out << "  " << quoted(nodes[e.from].id) << " -> " << quoted(nodes[e.to].id) << " [";
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
  out << "}\n";
  HCSIM_ASSERT(out.good());
  return out.str();
}

}  // namespace hcsim
