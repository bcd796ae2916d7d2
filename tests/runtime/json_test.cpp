#include "runtime/json.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace tiercache {
namespace {

TEST(JsonTest, ParsesNestedDocumentAndKeepsOrder) {
  auto v = ParseJson(R"( {"b": [1, -2.5e3, true, null], "a": {"x": "y\n\u00e9"}} )");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_TRUE(v->is_object());
  ASSERT_EQ(v->members().size(), 2u);
  EXPECT_EQ(v->members()[0].first, "b");
  const JsonValue* b = v->Find("b");
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->items().size(), 4u);
  EXPECT_EQ(b->items()[0].AsUint64().value(), 1u);
  EXPECT_DOUBLE_EQ(b->items()[1].AsDouble().value(), -2500.0);
  EXPECT_TRUE(b->items()[2].AsBool().value());
  EXPECT_TRUE(b->items()[3].is_null());
  EXPECT_EQ(v->Find("a")->Find("x")->AsString().value(), "y\n\xc3\xa9");
  EXPECT_EQ(v->Find("missing"), nullptr);
}

TEST(JsonTest, IntegersSurviveExactly) {
  auto v = ParseJson("18446744073709551615");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->AsUint64().value(), UINT64_MAX);
  EXPECT_EQ(ParseJson("18446744073709551616")->AsUint64().status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(ParseJson("-1")->AsUint64().ok());
  EXPECT_FALSE(ParseJson("1.5")->AsUint64().ok());
  EXPECT_EQ(ParseJson("-42")->AsInt64().value(), -42);
}

TEST(JsonTest, SurrogatePairsDecode) {
  auto v = ParseJson(R"("\ud83d\ude00")");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->AsString().value(), "\xf0\x9f\x98\x80");
  EXPECT_FALSE(ParseJson(R"("\ud83d")").ok());
  EXPECT_FALSE(ParseJson(R"("\ude00")").ok());
}

TEST(JsonTest, RejectsMalformedTextWithOffset) {
  const char* bad[] = {"", "{", "}", "[1,]", "{\"a\" 1}", "{\"a\":}", "01", "1.", "1e", "-",
                       "tru", "\"abc", "\"\\x\"", "[1 2]", "{} {}", "\"a\tb\"", "{1:2}",
                       "nul", "[", "\"\\u12\""};
  for (const char* text : bad) {
    auto v = ParseJson(text);
    EXPECT_FALSE(v.ok()) << "accepted: " << text;
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(v.status().message().find("at byte"), std::string::npos);
    }
  }
}

TEST(JsonTest, DepthIsBounded) {
  std::string deep(kMaxJsonDepth + 5, '[');
  deep += std::string(kMaxJsonDepth + 5, ']');
  EXPECT_EQ(ParseJson(deep).status().code(), ErrorCode::kInvalidArgument);
  std::string ok(10, '[');
  ok += std::string(10, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
}

TEST(JsonTest, SerializeRoundTrips) {
  const std::string text = R"({"k":[1,2.5,"s\"q",false,null,{}],"e":"\u0001"})";
  auto v = ParseJson(text);
  ASSERT_TRUE(v.ok());
  auto again = ParseJson(v->Serialize());
  ASSERT_TRUE(again.ok()) << v->Serialize();
  EXPECT_EQ(again->Serialize(), v->Serialize());
  EXPECT_EQ(again->Find("e")->AsString().value(), "\x01");
}

TEST(JsonTest, WriterInsertsCommasAndEscapes) {
  JsonWriter w;
  w.BeginObject().Key("a").Uint(1).Key("b").BeginArray().String("x\"").Int(-2).Bool(true)
      .Null().EndArray().Key("c").Double(0.5).EndObject();
  EXPECT_EQ(w.text(), R"({"a":1,"b":["x\"",-2,true,null],"c":0.5})");
  EXPECT_TRUE(ParseJson(w.text()).ok());
}

// Fuzz-style: mutations of a valid document never crash the parser; each
// either parses or fails with kInvalidArgument.
TEST(JsonTest, MutatedInputNeverCrashes) {
  const std::string seed =
      R"({"gpu_cache_bytes":"8GiB","chunk_bytes":16777216,"list":[1,2,{"x":null}],"s":"\u00e9\n"})";
  const std::string alphabet = "{}[]\",:\\u0123456789.eE+-tfnrl \t\n\x01\xff";
  std::mt19937_64 rng(12345);
  int parsed = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    std::string text = seed;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % (text.size() + 1);
      switch (rng() % 3) {
        case 0: text.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        case 1: if (pos < text.size()) text.erase(pos, 1); break;
        default: if (pos < text.size()) text[pos] = alphabet[rng() % alphabet.size()]; break;
      }
    }
    auto v = ParseJson(text);
    if (v.ok()) {
      ++parsed;
      EXPECT_TRUE(ParseJson(v->Serialize()).ok());
    } else {
      EXPECT_EQ(v.status().code(), ErrorCode::kInvalidArgument);
    }
  }
  EXPECT_GT(parsed, 0);  // some mutations (inside strings) stay valid
}

}  // namespace
}  // namespace tiercache
