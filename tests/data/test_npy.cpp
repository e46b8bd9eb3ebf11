#include <edgescale/core/random.hpp>
#include <edgescale/data/npy.hpp>

#include "data/temp_dir.hpp"
#include "data/unseekable.hpp"
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace edgescale;
using namespace edgescale::data;
using edgescale::test::file_bytes;
using edgescale::test::TempDir;
using edgescale::test::UnseekableStream;
using edgescale::test::write_file;

namespace {

const std::filesystem::path fixtures = std::filesystem::path(EDGESCALE_TEST_DATA_DIR) / "npy";

template <class T>
std::string npy_bytes(const std::vector<T>& data, std::vector<Index> shape) {
  std::ostringstream out;
  write_npy(out, data.data(), std::span<const Index>(shape));
  return out.str();
}

template <class T>
NpyArray<T> from_bytes(const std::string& bytes, std::string_view name = "mem.npy") {
  std::istringstream in(bytes);
  return read_npy<T>(in, name);
}

/// A version 1.0 file with the given header text, padded as numpy pads, followed by `data`.
std::string with_header(const std::string& dict, const std::string& data = "") {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) {
    header += ' ';
  }
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xFFU);
  bytes += static_cast<char>(header.size() >> 8U);
  return bytes + header + data;
}

}  // namespace

TEST_CASE_TEMPLATE("npy round-trips every dtype and shape", T, float, double, std::int32_t,
                   std::int8_t, std::int64_t, std::uint8_t) {
  const std::vector<std::vector<Index>> shapes{{}, {0}, {5}, {2, 3}, {2, 1, 3, 2}, {0, 4}};
  for (const auto& shape : shapes) {
    Index n = 1;
    for (const Index d : shape) {
      n *= d;
    }
    std::vector<T> data(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) {
      data[static_cast<std::size_t>(i)] = static_cast<T>(3 * i + 1);
    }
    const std::string bytes = npy_bytes(data, shape);
    CHECK(bytes.size() % 64 == static_cast<std::size_t>(n) * sizeof(T) % 64);  // aligned data
    const NpyArray<T> back = from_bytes<T>(bytes);
    CHECK(back.shape == shape);
    CHECK(back.data == data);
  }
}

TEST_CASE("npy round-trips float and double bit for bit") {
  const std::vector<float> f{0.1F, -0.0F, std::numeric_limits<float>::denorm_min(),
                             std::numeric_limits<float>::max(),
                             std::numeric_limits<float>::infinity()};
  const std::vector<double> d{0.1, -1e-300, std::numeric_limits<double>::max(),
                              -std::numeric_limits<double>::infinity()};
  CHECK(from_bytes<float>(npy_bytes(f, {5})).data == f);
  CHECK(from_bytes<double>(npy_bytes(d, {2, 2})).data == d);
  const std::vector<double> nan{std::numeric_limits<double>::quiet_NaN()};
  CHECK(std::isnan(from_bytes<double>(npy_bytes(nan, {1})).data[0]));
  CHECK(std::signbit(from_bytes<float>(npy_bytes(f, {5})).data[1]));
}

TEST_CASE("write_npy writes the bytes numpy.save writes") {
  // tests/fixtures/npy/f4_arange_2x3.npy is np.save of np.arange(6, dtype='<f4').reshape(2, 3)
  // (numpy >= 1.23 headers; regenerate with scripts/fixtures/make_npy_fixtures.py)
  const std::vector<float> arange{0, 1, 2, 3, 4, 5};
  CHECK(npy_bytes(arange, {2, 3}) == file_bytes(fixtures / "f4_arange_2x3.npy"));
  const std::vector<float> scalar{1.5F};
  CHECK(npy_bytes(scalar, {}) == file_bytes(fixtures / "f4_scalar.npy"));
  std::vector<std::int32_t> i4(6);
  for (int k = 0; k < 6; ++k) {
    i4[static_cast<std::size_t>(k)] = 3 - 7 * k;
  }
  CHECK(npy_bytes(i4, {3, 2}) == file_bytes(fixtures / "i4_3x2.npy"));
}

TEST_CASE("npy files written by numpy read with the values numpy wrote") {
  const auto f4 = load_npy<float>(fixtures / "f4_arange_2x3.npy");
  CHECK(f4.shape == std::vector<Index>{2, 3});
  CHECK(f4.data == std::vector<float>{0, 1, 2, 3, 4, 5});

  const auto f8 = load_npy<double>(fixtures / "f8_tenths_4.npy");
  CHECK(f8.shape == std::vector<Index>{4});
  for (int k = 0; k < 4; ++k) {
    CHECK(f8.data[static_cast<std::size_t>(k)] == 0.1 * k - 1.0);  // same IEEE arithmetic
  }

  const auto i4 = load_npy<std::int32_t>(fixtures / "i4_3x2.npy");
  CHECK(i4.shape == std::vector<Index>{3, 2});
  for (int k = 0; k < 6; ++k) {
    CHECK(i4.data[static_cast<std::size_t>(k)] == 3 - 7 * k);
  }

  const auto i8 = load_npy<std::int64_t>(fixtures / "i8_5.npy");
  for (std::int64_t k = 0; k < 5; ++k) {
    CHECK(i8.data[static_cast<std::size_t>(k)] == (std::int64_t{1} << 40) + k);
  }

  const auto u1 = load_npy<std::uint8_t>(fixtures / "u1_2x2x3.npy");
  CHECK(u1.shape == std::vector<Index>{2, 2, 3});
  for (unsigned k = 0; k < 12; ++k) {
    CHECK(u1.data[k] == (k * 23) % 256);
  }

  const auto scalar = load_npy<float>(fixtures / "f4_scalar.npy");
  CHECK(scalar.shape.empty());
  CHECK(scalar.data == std::vector<float>{1.5F});

  const auto empty = load_npy<float>(fixtures / "f4_empty_0x3.npy");
  CHECK(empty.shape == std::vector<Index>{0, 3});
  CHECK(empty.data.empty());

  std::ifstream v2_file(fixtures / "f8_v2_2x2.npy", std::ios::binary);
  CHECK(read_npy_header(v2_file, "v2").major == 2);
  const auto v2 = load_npy<double>(fixtures / "f8_v2_2x2.npy");
  CHECK(v2.shape == std::vector<Index>{2, 2});
  CHECK(v2.data == std::vector<double>{0, 0.25, 0.5, 0.75});
}

TEST_CASE("int8, int16, uint16, uint32, uint64 and bool files read, widened, as numpy wrote them") {
  CHECK(load_npy<std::int64_t>(fixtures / "i1_4.npy").data ==
        std::vector<std::int64_t>{-128, -1, 0, 127});
  CHECK(load_npy<std::int32_t>(fixtures / "i2_3.npy").data ==
        std::vector<std::int32_t>{-32768, 5, 32767});
  CHECK(load_npy<std::int32_t>(fixtures / "u2_3.npy").data ==
        std::vector<std::int32_t>{0, 1000, 65535});
  CHECK(load_npy<std::int64_t>(fixtures / "u4_3.npy").data ==
        std::vector<std::int64_t>{0, 7, 4294967295});
  CHECK(load_npy<double>(fixtures / "u4_3.npy").data[2] == 4294967295.0);
  CHECK(load_npy<std::uint8_t>(fixtures / "b1_4.npy").data ==
        std::vector<std::uint8_t>{1, 0, 0, 1});
  // out of the requested type's range: refused, not wrapped
  CHECK_THROWS_WITH_AS(load_npy<std::int32_t>(fixtures / "u4_3.npy"),
                       doctest::Contains("value 4294967295 at index 2"), format_error);
  CHECK_THROWS_WITH_AS(load_npy<std::uint8_t>(fixtures / "i1_4.npy"),
                       doctest::Contains("value -128 at index 0"), format_error);
  // uint64 beyond int64: named, whatever the requested type
  CHECK_THROWS_WITH_AS(load_npy<std::int64_t>(fixtures / "u8_3.npy"),
                       doctest::Contains("value 18446744073709551615 at index 2"), format_error);
  CHECK_THROWS_AS(load_npy<double>(fixtures / "u8_3.npy"), format_error);
}

TEST_CASE("Fortran-order files are reordered into C order") {
  std::ifstream file(fixtures / "f4_fortran_3x4.npy", std::ios::binary);
  CHECK(read_npy_header(file, "f").fortran_order);
  const auto f2 = load_npy<float>(fixtures / "f4_fortran_3x4.npy");
  CHECK(f2.shape == std::vector<Index>{3, 4});
  for (int k = 0; k < 12; ++k) {
    CHECK(f2.data[static_cast<std::size_t>(k)] == static_cast<float>(k));
  }
  const auto f3 = load_npy<double>(fixtures / "f8_fortran_2x3x4.npy");
  CHECK(f3.shape == std::vector<Index>{2, 3, 4});
  for (int k = 0; k < 24; ++k) {
    CHECK(f3.data[static_cast<std::size_t>(k)] == static_cast<double>(k));
  }
}

TEST_CASE("read_npy converts between dtypes, exactly or not at all") {
  // integer -> floating
  const auto i8_as_double = load_npy<double>(fixtures / "i8_5.npy");
  CHECK(i8_as_double.data[3] == 1099511627779.0);
  const auto u1_as_float = load_npy<float>(fixtures / "u1_2x2x3.npy");
  CHECK(u1_as_float.data[11] == static_cast<float>((11 * 23) % 256));
  // float -> double is exact; double -> float rounds
  CHECK(load_npy<double>(fixtures / "f4_arange_2x3.npy").data[5] == 5.0);
  CHECK(load_npy<float>(fixtures / "f8_tenths_4.npy").data[1] == static_cast<float>(0.1 - 1.0));
  // integer -> narrower integer: only if every value fits
  CHECK_THROWS_WITH_AS(load_npy<std::int32_t>(fixtures / "i8_5.npy"),
                       doctest::Contains("i8_5.npy': value 1099511627776 at index 0"),
                       format_error);
  CHECK_THROWS_WITH_AS(load_npy<std::uint8_t>(fixtures / "i4_3x2.npy"),
                       doctest::Contains("value -4 at index 1 does not convert exactly"),
                       format_error);
  const auto i4_as_i8 = load_npy<std::int64_t>(fixtures / "i4_3x2.npy");
  CHECK(i4_as_i8.data[5] == 3 - 35);
  // floating -> integer: only integral values
  CHECK(load_npy<std::int32_t>(fixtures / "f4_arange_2x3.npy").data[4] == 4);
  CHECK_THROWS_WITH_AS(load_npy<std::int64_t>(fixtures / "f8_tenths_4.npy"),
                       doctest::Contains("f8_tenths_4.npy"), format_error);
  const std::vector<double> edges{255.0, 256.0};
  CHECK_THROWS_WITH_AS(from_bytes<std::uint8_t>(npy_bytes(edges, {2}), "edges"),
                       doctest::Contains("value 256.000000 at index 1"), format_error);
  const std::vector<double> nan{std::numeric_limits<double>::quiet_NaN()};
  CHECK_THROWS_AS(from_bytes<std::int32_t>(npy_bytes(nan, {1})), format_error);
  const std::vector<double> limits{-2147483648.0, 2147483647.0};
  CHECK(from_bytes<std::int32_t>(npy_bytes(limits, {2})).data ==
        std::vector<std::int32_t>{std::numeric_limits<std::int32_t>::min(),
                                  std::numeric_limits<std::int32_t>::max()});
  const std::vector<double> beyond{2147483648.0};
  CHECK_THROWS_AS(from_bytes<std::int32_t>(npy_bytes(beyond, {1})), format_error);
  // integers convert through int64_t, not double: 2^53 + 1 is named exactly, not rounded
  const std::vector<std::int64_t> large{7, (std::int64_t{1} << 53) + 1};
  CHECK_THROWS_WITH_AS(from_bytes<std::int32_t>(npy_bytes(large, {2})),
                       doctest::Contains("value 9007199254740993 at index 1"), format_error);
  CHECK(from_bytes<double>(npy_bytes(large, {2})).data[1] == 9007199254740992.0);
  const std::vector<std::uint8_t> bytes{0, 255};
  CHECK(from_bytes<std::int32_t>(npy_bytes(bytes, {2})).data == std::vector<std::int32_t>{0, 255});
}

TEST_CASE("double -> float beyond float's range rounds as IEEE does, without UB") {
  const double max = std::numeric_limits<float>::max();
  const double half_ulp = std::ldexp(1.0, 103);
  const std::vector<double> values{1e300, -1e300, max + half_ulp / 2, max + half_ulp,
                                   std::numeric_limits<double>::infinity()};
  const auto f = from_bytes<float>(npy_bytes(values, {5})).data;
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(f[0] == inf);
  CHECK(f[1] == -inf);
  CHECK(f[2] == std::numeric_limits<float>::max());
  CHECK(f[3] == inf);
  CHECK(f[4] == inf);
}

TEST_CASE("a header too long for version 1.0 is written as version 2.0") {
  const std::vector<Index> shape(25000, 1);  // "1, " x 25000 > 64 KiB
  const std::vector<float> value{7.0F};
  const std::string bytes = npy_bytes(value, shape);
  CHECK(bytes[6] == 2);
  CHECK(bytes.size() % 64 == 4);
  std::istringstream in(bytes);
  const NpyHeader header = read_npy_header(in, "deep");
  CHECK(header.major == 2);
  CHECK(header.shape == shape);
  const auto back = from_bytes<float>(bytes);
  CHECK(back.shape == shape);
  CHECK(back.data == value);
  CHECK(npy_bytes(value, {1})[6] == 1);
}

TEST_CASE("arrays saved one after another into one stream read back one after another") {
  std::stringstream io;
  const std::vector<float> a{1, 2, 3};
  const std::vector<std::int64_t> b{-4, 5};
  write_npy(io, a.data(), std::array<Index, 1>{3});
  write_npy(io, NpyArray<std::int64_t>{{2, 1}, b});
  CHECK(read_npy<float>(io, "s").data == a);
  const auto second = read_npy<std::int64_t>(io, "s");
  CHECK(second.shape == std::vector<Index>{2, 1});
  CHECK(second.data == b);
}

TEST_CASE("write_npy rejects inconsistent arguments") {
  std::ostringstream out;
  const std::vector<float> data{1, 2, 3};
  CHECK_THROWS_AS(write_npy(out, data.data(), std::array<Index, 2>{-1, 3}), argument_error);
  CHECK_THROWS_AS(write_npy(out, NpyArray<float>{{2, 2}, data}), shape_error);
}

TEST_CASE("bad magic, versions and dtypes raise format_error naming the file") {
  CHECK_THROWS_WITH_AS(from_bytes<float>("PK\x03\x04 not numpy at all", "model.npz"),
                       doctest::Contains(".npy file 'model.npz': bad magic"), format_error);
  std::string v4 = npy_bytes(std::vector<float>{1}, {1});
  v4[6] = 4;
  CHECK_THROWS_WITH_AS(from_bytes<float>(v4, "v4"), doctest::Contains("version 4.0"), format_error);
  CHECK_THROWS_WITH_AS(load_npy<float>(fixtures / "f4_big_endian_3.npy"),
                       doctest::Contains("big-endian dtype '>f4'"), format_error);
  CHECK_THROWS_WITH_AS(load_npy<float>(fixtures / "f4_big_endian_3.npy"),
                       doctest::Contains("f4_big_endian_3.npy"), format_error);
  CHECK_THROWS_WITH_AS(load_npy<float>(fixtures / "f2_3.npy"),
                       doctest::Contains("unsupported dtype '<f2'"), format_error);
}

TEST_CASE("every truncation of a valid file raises format_error naming the file") {
  const std::vector<double> data{1, 2, 3, 4, 5, 6};
  const std::string full = npy_bytes(data, {2, 3});
  for (std::size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_WITH_AS(from_bytes<double>(full.substr(0, n), "cut.npy"),
                         doctest::Contains("'cut.npy'"), format_error);
    UnseekableStream pipe(full.substr(0, n));
    CHECK_THROWS_WITH_AS(read_npy<float>(pipe, "cut.npy"), doctest::Contains("'cut.npy'"),
                         format_error);
  }
  CHECK_THROWS_WITH_AS(from_bytes<double>(full.substr(0, full.size() - 1), "cut.npy"),
                       doctest::Contains("truncated data"), format_error);
  CHECK_THROWS_WITH_AS(from_bytes<double>(full.substr(0, 9), "cut.npy"),
                       doctest::Contains("truncated header"), format_error);
}

TEST_CASE("hostile headers are rejected with a reason") {
  struct Case {
    std::string header;
    std::string reason;
  };
  const std::vector<Case> cases{
      {"{'descr': '<f4', 'fortran_order': False}", "lacks the key 'shape'"},
      {"{'descr': '<f4', 'shape': (1,)}", "lacks the key 'fortran_order'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "appears twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unexpected key"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", "unsupported dtype '<f4, '"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (1,)}", "expected ':'"},
      {"{'descr': '<f4", "unterminated string"},
      {"{'descr': '\\x3cf4', 'fortran_order': False, 'shape': (1,)}", "escape"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", "structured"},
      {"{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", "unsupported dtype '|O'"},
      {"{'descr': '<f4', 'fortran_order': maybe, 'shape': (1,)}", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", "',' or ')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
       "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}",
       "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing", "after the header dict"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "',' or '}'"},
      {"['descr', '<f4']", "'{'"},
      {"", "'{'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.header);
    CHECK_THROWS_WITH_AS(from_bytes<float>(with_header(c.header, "abcd"), "evil.npy"),
                         doctest::Contains(c.reason.c_str()), format_error);
    CHECK_THROWS_WITH_AS(from_bytes<float>(with_header(c.header, "abcd"), "evil.npy"),
                         doctest::Contains("'evil.npy'"), format_error);
  }
  // the well-formed variants are accepted: double quotes, no trailing comma, Python 2 longs
  CHECK(from_bytes<float>(
            with_header(R"({"descr": "<f4", "fortran_order": False, "shape": (1,)})", "abcd"))
            .shape == std::vector<Index>{1});
  CHECK(from_bytes<float>(
            with_header("{'shape': (1L,), 'fortran_order': True, 'descr': '<f4', }", "abcd"))
            .shape == std::vector<Index>{1});
}

TEST_CASE("declared sizes beyond the data are caught before allocating") {
  // 8 GB declared, 4 bytes present
  const std::string liar =
      with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }", "abcd");
  CHECK_THROWS_WITH_AS(from_bytes<double>(liar, "liar.npy"),
                       doctest::Contains("needs 8000000000 bytes, found 4"), format_error);
  UnseekableStream pipe(liar);
  CHECK_THROWS_WITH_AS(read_npy<double>(pipe, "liar.npy"),
                       doctest::Contains("found 0 whole values"), format_error);
  // a header length beyond the limit (version 2.0, 4 GiB)
  std::string huge_header = "\x93NUMPY";
  huge_header += '\x02';
  huge_header += std::string("\x00\xff\xff\xff\xff", 5);
  CHECK_THROWS_WITH_AS(from_bytes<float>(huge_header, "h.npy"),
                       doctest::Contains("longer than the limit"), format_error);
}

TEST_CASE("random corruption of a file never crashes: it reads or raises format_error") {
  const std::vector<float> data{1, 2, 3, 4, 5, 6, 7, 8};
  const std::string good = npy_bytes(data, {2, 4});
  Rng rng = make_stream(11, "npy-fuzz");
  int rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = good;
    const auto flips = 1 + uniform_index(rng, 4);
    for (std::uint64_t f = 0; f < flips; ++f) {
      const auto at = static_cast<std::size_t>(uniform_index(rng, bytes.size()));
      bytes[at] = static_cast<char>(uniform_index(rng, 256));
    }
    try {
      (void)from_bytes<float>(bytes, "fuzz.npy");
      (void)from_bytes<std::int64_t>(bytes, "fuzz.npy");
    } catch (const format_error& e) {
      CHECK(std::string(e.what()).find("'fuzz.npy'") != std::string::npos);
      ++rejected;
    }
  }
  CHECK(rejected > 0);
}

TEST_CASE("load_npy and save_npy: missing files, trailing data, unwritable paths") {
  const TempDir dir;
  const auto missing = dir.path() / "missing.npy";
  try {
    (void)load_npy<float>(missing);
    FAIL("no exception");
  } catch (const format_error&) {
    FAIL("a missing file is not a format error");
  } catch (const error& e) {
    CHECK(std::string(e.what()).find("missing.npy' does not exist") != std::string::npos);
  }
  const auto extra = dir.path() / "extra.npy";
  write_file(extra, npy_bytes(std::vector<float>{1, 2}, {2}) + "x");
  CHECK_THROWS_WITH_AS(load_npy<float>(extra), doctest::Contains("extra.npy': trailing data"),
                       format_error);
  const std::vector<float> v{1, 2};
  CHECK_THROWS_WITH_AS(
      save_npy(dir.path() / "no" / "such" / "dir.npy", v.data(), std::array<Index, 1>{2}),
      doctest::Contains("dir.npy' for writing"), error);
  save_npy(dir.path() / "ok.npy", NpyArray<float>{{2}, v});
  CHECK(load_npy<float>(dir.path() / "ok.npy").data == v);
}
