#include "sim/wait_for_graph.h"

#include <map>
#include <sstream>
#include <string>

#include <boost/graph/adjacency_list.hpp>
// GCC 12 reports a false -Wmaybe-uninitialized inside boost::optional when write_graphviz is inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/graph/graphviz.hpp>

namespace hcsim {

namespace {

struct VertexProps {
  std::string name;
  std::string label;
  std::string shape;
};
struct EdgeProps {
  std::string label;
};
using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, VertexProps, EdgeProps>;


}  // namespace

std::string wait_for_graph_dot(const Verdict& verdict, const CollectiveLedger& collectives) {
  Graph g;
  std::map<std::string, Graph::vertex_descriptor> by_name;
  auto vertex = [&](const std::string& name, const std::string& label, const std::string& shape) {
    auto it = by_name.find(name);
    if (it != by_name.end()) return it->second;
    auto v = boost::add_vertex(VertexProps{name, label, shape}, g);
    by_name.emplace(name, v);
    return v;
  };
  for (const ActorState& a : verdict.actors) {
    vertex(actor_label(a), actor_label(a) + "\\n" + describe_wait(a), "box");
  }
  for (const ActorState& a : verdict.actors) {
    const auto from = by_name.at(actor_label(a));
    switch (a.wait) {
      case WaitKind::kCollective: {
        // Waits on every member that has not entered this sequence with the same collective.
        const OpenCollective* p = collectives.find_open(a.group, a.seq);
        for (const ActorState& b : verdict.actors) {
          if (b.actor != a.actor || b.rank == a.rank) continue;
          std::string why;
          if (p) {
            if (!p->entered(b.rank)) {
              why = "has not entered seq " + std::to_string(a.seq);
            } else {
              for (const auto& e : p->entries) {
                if (e.rank == b.rank && (e.op != a.op || e.size != a.size)) {
                  why = "entered " + std::string(collective_op_name(e.op)) + "(" + std::to_string(e.size) + ") at seq " + std::to_string(a.seq);
                }
              }
            }
          }
          if (why.empty()) continue;
          boost::add_edge(from, by_name.at(actor_label(b)),
                          EdgeProps{std::string(group_name(a.group)) + ": " + why}, g);
        }
        break;
      }
      case WaitKind::kSignal: {
        const std::string producer = actor_label(a.rank, a.producer, 0);
        if (by_name.count(producer)) boost::add_edge(from, by_name.at(producer), EdgeProps{a.signal_name}, g);
        break;
      }
      case WaitKind::kStorage: {
        const std::string l3 = "L3 (rank " + std::to_string(a.rank) + ")";
        const auto to = vertex(l3, l3, "cylinder");
        boost::add_edge(from, to, EdgeProps{std::string(storage_op_name(a.storage_op)) + (a.never_completes ? ", never completes" : "")}, g);
        break;
      }
      default: break;
    }
  }
  std::ostringstream out;
  boost::write_graphviz(
      out, g,
      [&](std::ostream& os, Graph::vertex_descriptor v) {
        os << "[label=\"" << g[v].label << "\", shape=" << g[v].shape << "]";
      },
      [&](std::ostream& os, Graph::edge_descriptor e) { os << "[label=\"" << g[e].label << "\"]"; },
      [&](std::ostream& os) {
        os << "label=\"" << (verdict.hang() ? verdict.headline : "complete") << "\";\nlabelloc=t;\n";
      });
  return out.str();
}

}  // namespace hcsim

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
