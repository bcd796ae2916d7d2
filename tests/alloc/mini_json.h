// A minimal JSON reader for tests: enough to prove a snapshot is well formed
// and to walk it. Throws std::runtime_error on malformed input.
#ifndef TIERCACHE_TESTS_ALLOC_MINI_JSON_H_
#define TIERCACHE_TESTS_ALLOC_MINI_JSON_H_

#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace tiercache::testing_json {

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<Value> items;
  std::map<std::string, Value> fields;

  const Value& operator[](const std::string& key) const {
    auto it = fields.find(key);
    if (kind != Kind::kObject || it == fields.end()) throw std::runtime_error("no field " + key);
    return it->second;
  }
};

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}
  Value Parse() {
    Value value = ParseValue();
    SkipSpace();
    if (at_ != text_.size()) Fail("trailing characters");
    return value;
  }

 private:
  [[noreturn]] void Fail(const std::string& why) {
    throw std::runtime_error("JSON: " + why + " at offset " + std::to_string(at_));
  }
  void SkipSpace() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }
  char Peek() {
    SkipSpace();
    if (at_ >= text_.size()) Fail("unexpected end");
    return text_[at_];
  }
  void Expect(char c) {
    if (Peek() != c) Fail(std::string("expected ") + c);
    ++at_;
  }
  bool Literal(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (text_.compare(at_, n, word) != 0) return false;
    at_ += n;
    return true;
  }
  std::string ParseString() {
    Expect('"');
    std::string out;
    while (at_ < text_.size() && text_[at_] != '"') {
      if (text_[at_] == '\\') ++at_;
      if (at_ < text_.size()) out += text_[at_++];
    }
    if (at_ >= text_.size()) Fail("unterminated string");
    ++at_;
    return out;
  }
  Value ParseValue() {
    Value value;
    char c = Peek();
    if (c == '{') {
      value.kind = Value::Kind::kObject;
      ++at_;
      if (Peek() == '}') { ++at_; return value; }
      for (;;) {
        std::string key = ParseString();
        Expect(':');
        value.fields[key] = ParseValue();
        if (Peek() == ',') { ++at_; continue; }
        Expect('}');
        return value;
      }
    }
    if (c == '[') {
      value.kind = Value::Kind::kArray;
      ++at_;
      if (Peek() == ']') { ++at_; return value; }
      for (;;) {
        value.items.push_back(ParseValue());
        if (Peek() == ',') { ++at_; continue; }
        Expect(']');
        return value;
      }
    }
    if (c == '"') {
      value.kind = Value::Kind::kString;
      value.text = ParseString();
      return value;
    }
    if (Literal("true")) { value.kind = Value::Kind::kBool; value.boolean = true; return value; }
    if (Literal("false")) { value.kind = Value::Kind::kBool; return value; }
    if (Literal("null")) return value;
    const char* start = text_.c_str() + at_;
    char* end = nullptr;
    value.number = std::strtod(start, &end);
    if (end == start) Fail("bad value");
    at_ += static_cast<size_t>(end - start);
    value.kind = Value::Kind::kNumber;
    return value;
  }

  const std::string& text_;
  size_t at_ = 0;
};

inline Value Parse(const std::string& text) { return Parser(text).Parse(); }

}  // namespace tiercache::testing_json

#endif  // TIERCACHE_TESTS_ALLOC_MINI_JSON_H_
