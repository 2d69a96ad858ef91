#include "chronos/io/safetensors.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "chronos/core/error.h"
#include "support/temp_dir.h"
#include "support/tensors.h"

namespace chronos {
namespace {

using testing::TempDir;

// A safetensors file from a literal header and a data section.
std::string raw_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Expects a FormatError whose message contains each fragment.
void expect_format_error(const std::string& path, std::initializer_list<std::string> fragments) {
  try {
    SafetensorsFile file(path);
    for (const auto& name : file.names()) file.tensor(name);
    FAIL() << "expected a FormatError for " << path;
  } catch (const FormatError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    for (const auto& f : fragments) EXPECT_NE(what.find(f), std::string::npos) << "missing '" << f << "' in: " << what;
  }
}

TEST(Safetensors, RoundTripsEveryDtype) {
  TempDir dir;
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f32", at::randn({3, 4})},
      {"f16", at::randn({5}).to(at::kHalf)},
      {"bf16", at::randn({2, 2, 2}).to(at::kBFloat16)},
      {"f64", at::randn({2}, at::kDouble)},
      {"i64", at::arange(7, at::kLong)},
      {"i32", at::arange(3, at::kInt)},
      {"i16", at::arange(3, at::kShort)},
      {"i8", at::arange(-2, 2, at::kChar)},
      {"u8", at::arange(5, at::kByte)},
      {"bool", testing::bool_mask({1, 0, 1})},
      {"scalar", at::scalar_tensor(3.5)},
      {"empty", at::empty({0, 4})},
  };
  save_safetensors(dir.file("a.safetensors"), tensors, {{"format", "pt"}});
  SafetensorsFile file(dir.file("a.safetensors"));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  for (const auto& [name, expected] : tensors) {
    const at::Tensor got = file.tensor(name);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), expected.sizes()) << name;
    EXPECT_TRUE(at::equal(got, expected)) << name;
  }
}

TEST(Safetensors, ReadsAreZeroCopyAndWritesStayPrivate) {
  TempDir dir;
  save_safetensors(dir.file("z.safetensors"), {{"w", at::ones({16})}});
  const std::string before = testing::read_bytes(dir.file("z.safetensors"));
  {
    SafetensorsFile file(dir.file("z.safetensors"));
    at::Tensor a = file.tensor("w");
    at::Tensor b = file.tensor("w");
    EXPECT_EQ(a.data_ptr(), b.data_ptr());  // both views of the one mapping
    a.fill_(7);                             // copy-on-write: the file is untouched
    EXPECT_EQ(b[0].item<float>(), 7.0f);
  }
  EXPECT_EQ(testing::read_bytes(dir.file("z.safetensors")), before);
}

TEST(Safetensors, ViewOutlivesTheFileObject) {
  TempDir dir;
  save_safetensors(dir.file("v.safetensors"), {{"w", at::arange(10, at::kFloat)}});
  at::Tensor view;
  { view = SafetensorsFile(dir.file("v.safetensors")).tensor("w"); }
  EXPECT_EQ(view[9].item<float>(), 9.0f);
}

TEST(Safetensors, WritesReadableHeaderLayout) {
  TempDir dir;
  save_safetensors(dir.file("h.safetensors"), {{"b", at::zeros({2})}, {"a", at::zeros({1}, at::kLong)}});
  const std::string bytes = testing::read_bytes(dir.file("h.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_NE(header.find(R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), std::string::npos) << header;
  EXPECT_NE(header.find(R"("a":{"dtype":"I64","shape":[1],"data_offsets":[8,16]})"), std::string::npos) << header;
  EXPECT_EQ(bytes.size(), 8 + n + 16);
}

TEST(Safetensors, MissingFileIsAnIoError) {
  TempDir dir;
  EXPECT_THROW(SafetensorsFile(dir.file("nope.safetensors")), IoError);
}

TEST(Safetensors, TooShortFile) {
  TempDir dir;
  testing::write_bytes(dir.file("s"), "abc");
  expect_format_error(dir.file("s"), {"too short"});
}

TEST(Safetensors, HeaderLengthBeyondFile) {
  TempDir dir;
  std::string bytes = raw_file("{}", "");
  bytes[0] = static_cast<char>(200);
  testing::write_bytes(dir.file("l"), bytes);
  expect_format_error(dir.file("l"), {"header length 200", "past the end"});
}

TEST(Safetensors, HugeHeaderLength) {
  TempDir dir;
  std::string bytes = raw_file("{}", "");
  bytes[7] = static_cast<char>(0x7f);
  testing::write_bytes(dir.file("l"), bytes);
  expect_format_error(dir.file("l"), {"exceeds"});
}

TEST(Safetensors, HeaderIsNotJson) {
  TempDir dir;
  testing::write_bytes(dir.file("j"), raw_file("{\"a\": [1, 2", ""));
  expect_format_error(dir.file("j"), {"not valid JSON"});
}

TEST(Safetensors, HeaderIsNotAnObject) {
  TempDir dir;
  testing::write_bytes(dir.file("j"), raw_file("[1, 2, 3]", ""));
  expect_format_error(dir.file("j"), {"not an object"});
}

TEST(Safetensors, UnknownDtype) {
  TempDir dir;
  testing::write_bytes(dir.file("d"), raw_file(R"({"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", "abcd"));
  expect_format_error(dir.file("d"), {"'w'", "unknown dtype 'F12'"});
}

TEST(Safetensors, DtypeLibTorchLacks) {
  TempDir dir;
  testing::write_bytes(dir.file("d"), raw_file(R"({"w":{"dtype":"U32","shape":[1],"data_offsets":[0,4]}})", "abcd"));
  expect_format_error(dir.file("d"), {"U32", "not supported"});
}

TEST(Safetensors, OffsetsOutOfRange) {
  TempDir dir;
  testing::write_bytes(dir.file("o"), raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"));
  expect_format_error(dir.file("o"), {"'w'", "past the data section"});
}

TEST(Safetensors, OffsetsBackwards) {
  TempDir dir;
  testing::write_bytes(dir.file("o"), raw_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", "abcd"));
  expect_format_error(dir.file("o"), {"'w'", "backwards"});
}

TEST(Safetensors, OverlappingTensors) {
  TempDir dir;
  testing::write_bytes(dir.file("o"), raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                                std::string(12, 'x')));
  expect_format_error(dir.file("o"), {"'a'", "'b'", "overlap"});
}

TEST(Safetensors, ShapeDoesNotMatchByteCount) {
  TempDir dir;
  testing::write_bytes(dir.file("s"), raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x')));
  expect_format_error(dir.file("s"), {"'w'", "needs 12 bytes", "hold 8"});
}

TEST(Safetensors, ShapeOverflow) {
  TempDir dir;
  testing::write_bytes(dir.file("s"), raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})",
                                               std::string(8, 'x')));
  expect_format_error(dir.file("s"), {"'w'", "too large"});
}

TEST(Safetensors, NegativeDimension) {
  TempDir dir;
  testing::write_bytes(dir.file("s"), raw_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"));
  expect_format_error(dir.file("s"), {"'w'", "non-negative"});
}

TEST(Safetensors, MissingFields) {
  TempDir dir;
  testing::write_bytes(dir.file("m"), raw_file(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"));
  expect_format_error(dir.file("m"), {"'w'", "dtype"});
  testing::write_bytes(dir.file("m2"), raw_file(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"));
  expect_format_error(dir.file("m2"), {"'w'", "shape"});
  testing::write_bytes(dir.file("m3"), raw_file(R"({"w":{"dtype":"F32","shape":[1]}})", "abcd"));
  expect_format_error(dir.file("m3"), {"'w'", "data_offsets"});
}

TEST(Safetensors, BadMetadata) {
  TempDir dir;
  testing::write_bytes(dir.file("m"), raw_file(R"({"__metadata__":{"format":3}})", ""));
  expect_format_error(dir.file("m"), {"__metadata__"});
}

TEST(Safetensors, TruncatedFile) {
  TempDir dir;
  save_safetensors(dir.file("t.safetensors"), {{"a", at::ones({64})}, {"b", at::ones({64})}});
  std::string bytes = testing::read_bytes(dir.file("t.safetensors"));
  testing::write_bytes(dir.file("t.safetensors"), bytes.substr(0, bytes.size() - 10));
  expect_format_error(dir.file("t.safetensors"), {"'b'", "truncated"});
}

TEST(Safetensors, MisalignedDataIsCopied) {
  TempDir dir;
  // A 1-byte tensor first pushes the F32 tensor to an odd address.
  std::string data = std::string(1, '\x01');
  float value = 2.5f;
  data.append(reinterpret_cast<const char*>(&value), 4);
  testing::write_bytes(dir.file("m"), raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}} )",
                                               data));
  SafetensorsFile file(dir.file("m"));
  EXPECT_EQ(file.tensor("b").item<float>(), 2.5f);
}

TEST(Safetensors, UnknownTensorNameIsNamed) {
  TempDir dir;
  save_safetensors(dir.file("n.safetensors"), {{"a", at::ones({1})}});
  SafetensorsFile file(dir.file("n.safetensors"));
  try {
    file.tensor("b");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos);
  }
}

TEST(Safetensors, FailedWriteKeepsTheOldFile) {
  TempDir dir;
  save_safetensors(dir.file("k.safetensors"), {{"a", at::ones({2})}});
  const std::string before = testing::read_bytes(dir.file("k.safetensors"));
  EXPECT_THROW(save_safetensors(dir.file("k.safetensors"), {{"a", at::ones({2})}, {"c", at::Tensor()}}), InvalidArgument);
  EXPECT_EQ(testing::read_bytes(dir.file("k.safetensors")), before);
}

}  // namespace
}  // namespace chronos
