// examples/common/common.cpp — the examples' shared code, compiled once for all of them: the flag
// parser (cli.hpp), the JSON writer (json.hpp) and the path checks (paths.hpp).
#include <edgescale/core/error.hpp>

#include "cli.hpp"
#include "json.hpp"
#include "paths.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <ostream>
#include <stdexcept>
#include <system_error>

// ---- cli.hpp ----

namespace edgescale::examples::cli {

namespace {

/// Parses all of `text` as a number; false for anything else (empty, trailing characters, out of
/// range).
template <class T>
bool parse_number(std::string_view text, T& out) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return false;
  }
  out = value;
  return true;
}

/// The shortest text that reads back as `v`.
std::string format_real(double v) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  return {buffer, result.ptr};
}

/// True when `value` is one of the '|'-separated `choices`.
bool is_choice(std::string_view choices, std::string_view value) {
  while (!choices.empty()) {
    const std::size_t bar = std::min(choices.find('|'), choices.size());
    if (choices.substr(0, bar) == value) {
      return true;
    }
    choices.remove_prefix(std::min(bar + 1, choices.size()));
  }
  return false;
}

std::string_view shown_metavar(const detail::Option& o) {
  return o.choices.empty() ? o.metavar : o.choices;
}

std::size_t head_size(const detail::Option& o) {
  return o.name.size() + (o.kind == detail::Kind::flag ? 0 : 1 + shown_metavar(o).size());
}

void pad(std::ostream& out, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) {
    out << ' ';
  }
}

std::string show(detail::Kind kind, const void* target) {
  switch (kind) {
    case detail::Kind::text:
      return *static_cast<const std::string*>(target);
    case detail::Kind::int32:
      return std::to_string(*static_cast<const std::int32_t*>(target));
    case detail::Kind::int64:
      return std::to_string(*static_cast<const std::int64_t*>(target));
    case detail::Kind::uint64:
      return std::to_string(*static_cast<const std::uint64_t*>(target));
    case detail::Kind::real:
      return format_real(*static_cast<const double*>(target));
    case detail::Kind::flag:
      return *static_cast<const bool*>(target) ? "on" : "off";
  }
  return {};
}

}  // namespace

Parser::Parser(std::string_view program, std::string_view summary)
    : program_(program), summary_(summary) {}

Parser& Parser::flag(std::string_view name, bool& target, std::string_view help) {
  add(name, "", help, detail::Kind::flag, &target);
  return *this;
}

Parser& Parser::choices(std::string_view allowed) {
  options_.back().choices = allowed;
  return *this;
}

void Parser::add(std::string_view name, std::string_view metavar, std::string_view help,
                 detail::Kind kind, void* target) {
  options_.push_back({name, metavar, help, {}, kind, target, show(kind, target)});
}

void Parser::parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      print_help(std::cout);
      std::exit(0);
    }
    std::string_view value;
    bool has_value = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    const auto o = std::find_if(options_.begin(), options_.end(),
                                [&](const detail::Option& x) { return x.name == arg; });
    if (o == options_.end()) {
      problem() << (arg.starts_with("-") ? "unknown option " : "unexpected argument ") << arg;
      exit_usage();
    }
    if (o->kind == detail::Kind::flag) {
      if (has_value) {
        problem() << o->name << " takes no value";
        exit_usage();
      }
      *static_cast<bool*>(o->target) = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        problem() << o->name << " needs a value (" << o->metavar << ")";
        exit_usage();
      }
      value = argv[++i];
    }
    set(*o, value);
  }
}

void Parser::set(const detail::Option& o, std::string_view value) const {
  bool ok = true;
  switch (o.kind) {
    case detail::Kind::text:
      if (!o.choices.empty() && !is_choice(o.choices, value)) {
        problem() << o.name << " must be " << o.choices << ", not '" << value << "'";
        exit_usage();
      }
      *static_cast<std::string*>(o.target) = value;
      break;
    case detail::Kind::int32:
      ok = parse_number(value, *static_cast<std::int32_t*>(o.target));
      break;
    case detail::Kind::int64:
      ok = parse_number(value, *static_cast<std::int64_t*>(o.target));
      break;
    case detail::Kind::uint64:
      ok = parse_number(value, *static_cast<std::uint64_t*>(o.target));
      break;
    case detail::Kind::real:
      ok = parse_number(value, *static_cast<double*>(o.target));
      break;
    case detail::Kind::flag:
      break;
  }
  if (!ok) {
    problem() << "bad value '" << value << "' for " << o.name << " (expected " << o.metavar << ")";
    exit_usage();
  }
}

void Parser::fail(std::string_view what) const {
  problem() << what;
  exit_usage();
}

std::ostream& Parser::problem() const {
  return std::cerr << program_ << ": ";
}

void Parser::exit_usage() const {
  std::cerr << '\n';
  print_usage(std::cerr);
  std::cerr << "(" << program_ << " --help lists every option)\n";
  std::exit(2);
}

void Parser::print_usage(std::ostream& out) const {
  out << "usage: " << program_;
  for (const detail::Option& o : options_) {
    out << " [" << o.name;
    if (o.kind != detail::Kind::flag) {
      out << ' ' << shown_metavar(o);
    }
    out << ']';
  }
  out << '\n';
}

void Parser::print_help(std::ostream& out) const {
  constexpr std::string_view help_flag = "-h, --help";
  std::size_t width = help_flag.size();
  for (const detail::Option& o : options_) {
    width = std::max(width, head_size(o));
  }
  out << summary_ << "\n\n";
  print_usage(out);
  out << "\noptions:\n";
  for (const detail::Option& o : options_) {
    out << "  " << o.name;
    if (o.kind != detail::Kind::flag) {
      out << ' ' << shown_metavar(o);
    }
    pad(out, width + 2 - head_size(o));
    out << o.help;
    if (o.kind != detail::Kind::flag) {
      out << " (default: " << (o.default_text.empty() ? "none" : o.default_text) << ')';
    }
    out << '\n';
  }
  out << "  " << help_flag;
  pad(out, width + 2 - help_flag.size());
  out << "print this help and exit\n";
}

}  // namespace edgescale::examples::cli

// ---- json.hpp ----

namespace edgescale::examples::json {

Writer& Writer::key(std::string_view name) {
  if (levels_.empty() || levels_.back().bracket != '{' || levels_.back().key_written) {
    throw std::logic_error("json::Writer: a key outside an object, or two keys in a row");
  }
  separate();
  write_string(name);
  out_ << ": ";
  levels_.back().key_written = true;
  return *this;
}

Writer& Writer::value(std::string_view s) {
  before_value();
  write_string(s);
  return after_value();
}

Writer& Writer::value(bool b) {
  before_value();
  out_ << (b ? "true" : "false");
  return after_value();
}

Writer& Writer::value(std::nullptr_t) {
  before_value();
  out_ << "null";
  return after_value();
}

Writer& Writer::value(double v) {
  before_value();
  if (std::isfinite(v)) {
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
    out_.write(buffer, result.ptr - buffer);
  } else {
    out_ << "null";
  }
  return after_value();
}

Writer& Writer::integer(std::int64_t bits, bool is_unsigned) {
  before_value();
  if (is_unsigned) {
    out_ << static_cast<std::uint64_t>(bits);
  } else {
    out_ << bits;
  }
  return after_value();
}

void Writer::newline_indent(std::size_t depth) {
  out_ << '\n';
  for (std::size_t i = 0; i < depth; ++i) {
    out_ << "  ";
  }
}

// Before a key, or a value in an array: the comma and the new line.
void Writer::separate() {
  Level& level = levels_.back();
  if (!level.empty) {
    out_ << ',';
  }
  level.empty = false;
  newline_indent(levels_.size());
}

void Writer::before_value() {
  if (done_) {
    throw std::logic_error("json::Writer: a second value after the outermost one");
  }
  if (levels_.empty()) {
    return;
  }
  Level& level = levels_.back();
  if (level.bracket == '{') {
    if (!level.key_written) {
      throw std::logic_error("json::Writer: a value in an object needs a key first");
    }
    level.key_written = false;
  } else {
    separate();
  }
}

Writer& Writer::after_value() {
  if (levels_.empty()) {
    done_ = true;
    out_ << '\n';
  }
  return *this;
}

Writer& Writer::open(char bracket) {
  before_value();
  out_ << bracket;
  levels_.push_back({bracket});
  return *this;
}

Writer& Writer::close(char bracket, char closing) {
  if (levels_.empty() || levels_.back().bracket != bracket || levels_.back().key_written) {
    throw std::logic_error(std::string("json::Writer: unbalanced '") + closing + "'");
  }
  const bool empty = levels_.back().empty;
  levels_.pop_back();
  if (!empty) {
    newline_indent(levels_.size());
  }
  out_ << closing;
  return after_value();
}

void Writer::write_string(std::string_view s) {
  out_ << '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out_ << "\\\"";
        break;
      case '\\':
        out_ << "\\\\";
        break;
      case '\n':
        out_ << "\\n";
        break;
      case '\t':
        out_ << "\\t";
        break;
      case '\r':
        out_ << "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          constexpr std::string_view hex = "0123456789abcdef";
          const auto u = static_cast<unsigned char>(c);
          out_ << "\\u00" << hex[u >> 4U] << hex[u & 0xFU];
        } else {
          out_ << c;
        }
    }
  }
  out_ << '"';
}

}  // namespace edgescale::examples::json

// ---- paths.hpp ----

namespace edgescale::examples {

namespace {

// Built by appending: g++ 12 at -O3 warns (-Wrestrict, a false positive) on "'" + std::string.
std::string quoted(const std::filesystem::path& p) {
  std::string s = "'";
  s += p.string();
  s += '\'';
  return s;
}

[[noreturn]] void path_fail(std::string_view option, const std::filesystem::path& path,
                            const std::string& why) {
  throw error(std::string(option) + " " + quoted(path) + ": " + why);
}

/// Creates `dir` and its parents as needed; throws unless it then is a directory.
void make_directory(std::string_view option, const std::filesystem::path& path,
                    const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    path_fail(option, path,
              std::string("cannot create the directory ") + quoted(dir) + ": " + ec.message());
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    path_fail(option, path, quoted(dir) + " is not a directory");
  }
}

/// Opens `file` for writing without truncating it (creating it if absent); throws with the
/// system's reason when it cannot. Returns whether the file existed before.
bool probe_write(std::string_view option, const std::filesystem::path& path,
                 const std::filesystem::path& file) {
  std::error_code ec;
  const bool existed = std::filesystem::exists(file, ec);
  errno = 0;
  std::ofstream probe(file, std::ios::app);
  if (!probe) {
    const int e = errno;
    path_fail(option, path,
              std::string("cannot write ") + (file == path ? "it" : quoted(file)) + ": " +
                  (e != 0 ? std::strerror(e) : "cannot open for writing"));
  }
  return existed;
}

}  // namespace

/// Checks that `file` can be written (creating its directory if needed); see the top of this file.
void check_output_file(const std::filesystem::path& file, std::string_view option) {
  if (file.empty()) {
    return;
  }
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    path_fail(option, file, "is a directory; give a file name");
  }
  make_directory(option, file,
                 file.has_parent_path() ? file.parent_path() : std::filesystem::path("."));
  if (!probe_write(option, file, file)) {
    std::filesystem::remove(file, ec);
  }
}

/// Checks that files can be written into `dir` (creating it and its parents if needed).
void check_output_dir(const std::filesystem::path& dir, std::string_view option) {
  if (dir.empty()) {
    return;
  }
  make_directory(option, dir, dir);
  const std::filesystem::path probe = dir / ".edgescale-write-check";
  if (!probe_write(option, dir, probe)) {
    std::error_code ec;
    std::filesystem::remove(probe, ec);
  }
}

/// Checks that `dir` exists and is a directory.
void check_input_dir(const std::filesystem::path& dir, std::string_view option) {
  if (dir.empty()) {
    return;
  }
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    path_fail(option, dir, "does not exist");
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    path_fail(option, dir, "is not a directory");
  }
}

}  // namespace edgescale::examples
