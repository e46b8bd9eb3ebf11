// examples/common/cli.hpp — the command-line parser every example shares.
//
//     cli::Parser cli("train", "Trains LeNet-300-100 or LeNet-5 on Fashion-MNIST.");
//     cli.option("--epochs", o.epochs, "N", "training epochs");   // default: o.epochs as it is
//     cli.option("--net", o.net, "NET", "the network").choices("mlp|lenet5");
//     cli.flag("--quiet", o.quiet, "no progress display");
//     cli.parse(argc, argv);
//     cli.require(o.epochs >= 0, "--epochs must be >= 0");
//
// Options take `--name value` or `--name=value`; a switch (flag) takes no value. The default an
// option shows in --help is its variable's value when it was declared. Numbers must be whole
// (`10x` is an error, so is a value out of the variable's range). -h and --help print the help to
// stdout and exit 0; a usage error prints the problem and the usage line to stderr and exits 2.
//
// Examples only: the library never parses command lines. The parser is compiled once, in
// common/common.cpp (the examples' shared library); this header only declares it, so it costs an
// example's compile next to nothing, where CLI11 would add about 8 s (docs/results/nn.md,
// "Examples").
#pragma once

#include <concepts>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace edgescale::examples::cli {

namespace detail {

/// The kinds of variable an option can set: parsing and printing them is a switch over this, so
/// an option of a new type costs no new code.
enum class Kind { text, int32, int64, uint64, real, flag };

template <class T>
constexpr Kind kind_of() {
  if constexpr (std::same_as<T, std::string>) {
    return Kind::text;
  } else if constexpr (std::same_as<T, bool>) {
    return Kind::flag;
  } else if constexpr (std::same_as<T, double>) {
    return Kind::real;
  } else if constexpr (std::same_as<T, std::int32_t>) {
    return Kind::int32;
  } else if constexpr (std::same_as<T, std::int64_t>) {
    return Kind::int64;
  } else {
    static_assert(std::same_as<T, std::uint64_t>,
                  "an option sets a std::string, bool, double, int32_t, int64_t or uint64_t");
    return Kind::uint64;
  }
}

struct Option {
  std::string_view name;
  std::string_view metavar;
  std::string_view help;
  std::string_view choices;  ///< "mlp|lenet5", or empty for any value
  Kind kind;
  void* target;
  std::string default_text;
};

}  // namespace detail

class Parser {
 public:
  /// `program` names the example in messages; `summary` is the first line of --help. Every text
  /// the parser is given (names, help) must outlive it: string literals, as in the examples.
  Parser(std::string_view program, std::string_view summary);

  /// An option with a value, stored into `target`: a std::string, double, int32_t (int),
  /// int64_t (edgescale::Index) or uint64_t. Its current value is the default --help shows.
  template <class T>
  Parser& option(std::string_view name, T& target, std::string_view metavar,
                 std::string_view help) {
    constexpr detail::Kind kind = detail::kind_of<T>();
    static_assert(kind != detail::Kind::flag, "a bool is a switch: declare it with flag()");
    add(name, metavar, help, kind, &target);
    return *this;
  }

  /// A switch without a value: present sets `target` to true.
  Parser& flag(std::string_view name, bool& target, std::string_view help);

  /// Restricts the option declared last (a string) to these '|'-separated values, which --help
  /// and the usage line show in place of its metavar: choices("mlp|lenet5").
  Parser& choices(std::string_view allowed);

  /// Sets every option given on the command line; exits on --help or a usage error.
  void parse(int argc, char** argv);

  /// Reports a usage error (the problem, then the usage line) and exits with status 2.
  [[noreturn]] void fail(std::string_view problem) const;

  /// fail(problem) unless `ok`.
  void require(bool ok, std::string_view problem) const {
    if (!ok) {
      fail(problem);
    }
  }

  /// "usage: train [--net mlp|lenet5] [--epochs N] ...".
  void print_usage(std::ostream& out) const;

  /// The summary, the usage line, then every option with its value, its help and its default.
  void print_help(std::ostream& out) const;

 private:
  void add(std::string_view name, std::string_view metavar, std::string_view help,
           detail::Kind kind, void* target);
  void set(const detail::Option& o, std::string_view value) const;
  [[nodiscard]] std::ostream& problem() const;
  [[noreturn]] void exit_usage() const;

  std::string_view program_;
  std::string_view summary_;
  std::vector<detail::Option> options_;
};

}  // namespace edgescale::examples::cli
