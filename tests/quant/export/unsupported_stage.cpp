// EXPECT-ERROR: stage_export<UserStage>.*has no C\+\+ export|has no C\+\+
// export.*stage_export<UserStage> quant::export_header on an integer network with a stage it does
// not know (a user's): a compile error that names the stage, never a header that computes something
// else. The control variant, the same network without the user's stage, compiles.
#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/export.hpp>
#include <edgescale/quant/stages.hpp>

#include <sstream>

/// A user's stage: codes in, codes out (it would join a network through quant::lowering).
struct UserStage {
  using input_type = edgescale::quant::QBatchView;
  using output_type = edgescale::quant::QBatchView;
  using output_shape = edgescale::Shape<4>;
  edgescale::quant::QBatchView forward(const edgescale::quant::QBatchView& x) { return x; }
};

void export_user_network() {
  using edgescale::Shape;
  using edgescale::quant::DenseStage;
#ifdef EDGESCALE_FAILTEST_CONTROL
  using Net = edgescale::quant::QNetwork<Shape<4>, DenseStage<4, 4>>;
#else
  using Net = edgescale::quant::QNetwork<Shape<4>, DenseStage<4, 4>, UserStage>;
#endif
  const Net net;
  std::ostringstream out;
  edgescale::quant::export_header(net, out);
}
