#include "backend/data_group.h"

namespace hcsim {

namespace {

class GlooDataGroup final : public DataGroup {
 public:
  explicit GlooDataGroup(GlooMesh& mesh) : mesh_(mesh) {}
  std::string describe() const override { return "Gloo over loopback (" + std::to_string(mesh_.ranks()) + " ranks)"; }
  bool survives_mismatched_counts() const override { return false; }
  void all_gather(int rank, std::span<const std::int64_t> in, std::span<std::int64_t> out) override {
    mesh_.all_gather(GlooChannel::kData, rank, in, out);
  }
  void all_reduce_sum(int rank, std::span<float> values) override { mesh_.all_reduce_sum(GlooChannel::kData, rank, values); }
  void abort() override { mesh_.abort(); }

 private:
  GlooMesh& mesh_;
};

}  // namespace

std::unique_ptr<DataGroup> make_gloo_data_group(GlooMesh& mesh) { return std::make_unique<GlooDataGroup>(mesh); }

}  // namespace hcsim
