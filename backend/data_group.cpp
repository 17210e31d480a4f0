#include "backend/data_group.h"

namespace hcsim {

namespace {

class GlooDataGroup final : public DataGroup {
 public:
  GlooDataGroup(GlooMesh& mesh, std::size_t group) : mesh_(mesh), group_(group) {}
  std::string describe() const override {
    return "Gloo over loopback (" + std::to_string(mesh_.group(group_).members.size()) + " ranks)";
  }
  bool survives_mismatched_counts() const override { return false; }
  void all_gather(int member, std::span<const std::int64_t> in, std::span<std::int64_t> out) override {
    mesh_.all_gather(group_, rank_of(member), in, out);
  }
  void all_reduce_sum(int member, std::span<float> values) override { mesh_.all_reduce_sum(group_, rank_of(member), values); }
  void abort() override { mesh_.abort(); }

 private:
  int rank_of(int member) const { return mesh_.group(group_).members.at(static_cast<std::size_t>(member)); }
  GlooMesh& mesh_;
  std::size_t group_;
};

}  // namespace

std::unique_ptr<DataGroup> make_gloo_data_group(GlooMesh& mesh, std::size_t group) { return std::make_unique<GlooDataGroup>(mesh, group); }

}  // namespace hcsim
