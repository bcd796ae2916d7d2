// A small JSON reader and writer for the runtime's config files and stats
// export. Not a general-purpose library: it reads RFC 8259 text into a tree
// (objects keep their key order, numbers keep their source text so 64-bit
// integers survive exactly) and writes compact, escaped output.
//
// The reader is meant for untrusted input: it never throws or crashes on
// malformed text, bounds nesting depth (kMaxJsonDepth) and reports the byte
// offset of the first error as kInvalidArgument.
//
// Thread safety: JsonValue and JsonWriter are plain values; distinct objects
// may be used from distinct threads.
#ifndef TIERCACHE_RUNTIME_JSON_H_
#define TIERCACHE_RUNTIME_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tiercache {

constexpr int kMaxJsonDepth = 64;

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  JsonValue() = default;
  static JsonValue Null() { return JsonValue(); }
  static JsonValue Bool(bool value);
  static JsonValue Number(std::string text);  // text must be a valid JSON number
  static JsonValue String(std::string value);
  static JsonValue Array(std::vector<JsonValue> items);
  static JsonValue Object(std::vector<std::pair<std::string, JsonValue>> members);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_object() const { return type_ == Type::kObject; }

  // Typed reads; kInvalidArgument when the type does not match. AsUint64
  // accepts only non-negative integers that fit in 64 bits.
  Result<bool> AsBool() const;
  Result<double> AsDouble() const;
  Result<uint64_t> AsUint64() const;
  Result<int64_t> AsInt64() const;
  Result<std::string> AsString() const;

  // Raw access (empty unless the type matches).
  const std::string& text() const { return text_; }  // a string's value or a number's text
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }
  // The member named `key`, or nullptr (the last one when a key repeats).
  const JsonValue* Find(std::string_view key) const;

  // Compact JSON text.
  std::string Serialize() const;

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string text_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

// Parses exactly one JSON value surrounded by optional whitespace.
Result<JsonValue> ParseJson(std::string_view text);

// Writes "a" with JSON escapes (quotes included).
std::string JsonQuote(std::string_view text);

// Builds compact JSON text. Commas are inserted automatically; the caller
// pairs Begin/End calls and puts Key() before every value inside an object.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Double(double value);  // non-finite values are written as null
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  const std::string& text() const { return out_; }

 private:
  void BeforeValue();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_JSON_H_
