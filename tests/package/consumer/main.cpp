// A minimal user of the installed (or vendored) edgescale: static shapes, a seeded stream, and a
// batch filled from it.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>

#include <cstdio>

int main() {
  using Image = edgescale::Shape<1, 28, 28>;
  static_assert(Image::size == 784 && Image::rank == 3);

  edgescale::Rng rng = edgescale::make_stream(1, "consumer");
  edgescale::Matrix<float> batch(Image::size, 4);
  for (edgescale::Index i = 0; i < batch.size(); ++i) {
    batch.data()[i] = edgescale::standard_normal<float>(rng);
  }
  edgescale::Rng again = edgescale::make_stream(1, "consumer");
  const bool reproducible = batch(0, 0) == edgescale::standard_normal<float>(again);

  std::printf("consumer: %lld x %lld batch, mean %.4f, reproducible %s\n",
              static_cast<long long>(batch.rows()), static_cast<long long>(batch.cols()),
              static_cast<double>(batch.mean()), reproducible ? "yes" : "no");
  return reproducible ? 0 : 1;
}
