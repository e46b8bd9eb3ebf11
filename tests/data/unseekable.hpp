// A read-only stream over bytes that cannot seek or tell, like a pipe or a decompressing stream:
// the readers must then guard against false lengths by reading in chunks.
#pragma once

#include <istream>
#include <streambuf>
#include <string>
#include <utility>

namespace edgescale::test {

class UnseekableBuffer : public std::streambuf {
 public:
  explicit UnseekableBuffer(std::string bytes) : bytes_(std::move(bytes)) {
    char* begin = bytes_.data();
    setg(begin, begin, begin + bytes_.size());
  }
  // seekoff/seekpos keep std::streambuf's defaults, which fail: tellg() returns -1.

 private:
  std::string bytes_;
};

/// An istream over `bytes` that cannot seek.
class UnseekableStream : public std::istream {
 public:
  explicit UnseekableStream(std::string bytes) : std::istream(nullptr), buffer_(std::move(bytes)) {
    rdbuf(&buffer_);
  }

 private:
  UnseekableBuffer buffer_;
};

}  // namespace edgescale::test
