// Independent readers for what tiercache-bench writes: a strict JSON parser
// (RFC 8259, into a small tree) and an XML well-formedness checker for the
// SVGs. Written separately from the tool's writers so the tests do not
// check the writers against themselves.
#ifndef TIERCACHE_TESTS_BENCH_TOOL_TEST_PARSERS_H_
#define TIERCACHE_TESTS_BENCH_TOOL_TEST_PARSERS_H_

#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tiercache::bench::testing {

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string text;  // string value, or the number's source text
  std::vector<Json> items;
  std::map<std::string, Json> members;

  const Json& operator[](const std::string& key) const {
    static const Json kMissing;
    auto it = members.find(key);
    return it == members.end() ? kMissing : it->second;
  }
  bool Has(const std::string& key) const { return members.count(key) > 0; }
  unsigned long long Uint() const { return std::strtoull(text.c_str(), nullptr, 10); }
};

// Returns false (with `error` set) on any deviation from the grammar.
class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}
  bool Parse(Json* out, std::string* error) {
    bool ok = Value(out, 0);
    Space();
    if (ok && i_ != s_.size()) ok = Fail("trailing text");
    if (!ok) *error = error_ + " at byte " + std::to_string(i_);
    return ok;
  }

 private:
  bool Fail(const std::string& why) {
    if (error_.empty()) error_ = why;
    return false;
  }
  void Space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool Literal(const char* word) {
    std::string w(word);
    if (s_.compare(i_, w.size(), w) != 0) return Fail("bad literal");
    i_ += w.size();
    return true;
  }
  bool String(std::string* out) {
    if (s_[i_] != '"') return Fail("expected string");
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      unsigned char c = s_[i_];
      if (c < 0x20) return Fail("control character in string");
      if (c == '\\') {
        ++i_;
        if (i_ >= s_.size()) return Fail("truncated escape");
        char e = s_[i_];
        if (e == 'u') {
          for (int k = 1; k <= 4; ++k) {
            if (i_ + k >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_ + k]))) {
              return Fail("bad \\u escape");
            }
          }
          out->push_back('?');
          i_ += 4;
        } else if (std::string("\"\\/bfnrt").find(e) != std::string::npos) {
          out->push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        } else {
          return Fail("bad escape");
        }
      } else {
        out->push_back(static_cast<char>(c));
      }
      ++i_;
    }
    if (i_ >= s_.size()) return Fail("unterminated string");
    ++i_;
    return true;
  }
  bool Number(Json* out) {
    size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) return Fail("bad number");
    if (s_[i_] == '0') {
      ++i_;
    } else {
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) return Fail("bad fraction");
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) return Fail("bad exponent");
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    out->kind = Json::kNumber;
    out->text = s_.substr(start, i_ - start);
    out->number = std::strtod(out->text.c_str(), nullptr);
    return true;
  }
  bool Value(Json* out, int depth) {
    if (depth > 64) return Fail("too deep");
    Space();
    if (i_ >= s_.size()) return Fail("unexpected end");
    char c = s_[i_];
    if (c == '{') {
      out->kind = Json::kObject;
      ++i_;
      Space();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
      while (true) {
        Space();
        std::string key;
        if (i_ >= s_.size() || !String(&key)) return Fail("expected key");
        if (out->members.count(key)) return Fail("duplicate key " + key);
        Space();
        if (i_ >= s_.size() || s_[i_] != ':') return Fail("expected ':'");
        ++i_;
        if (!Value(&out->members[key], depth + 1)) return false;
        Space();
        if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
        if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
        return Fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      out->kind = Json::kArray;
      ++i_;
      Space();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
      while (true) {
        out->items.emplace_back();
        if (!Value(&out->items.back(), depth + 1)) return false;
        Space();
        if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
        if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
        return Fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      out->kind = Json::kString;
      return String(&out->text);
    }
    if (c == 't') { out->kind = Json::kBool; out->boolean = true; return Literal("true"); }
    if (c == 'f') { out->kind = Json::kBool; return Literal("false"); }
    if (c == 'n') { out->kind = Json::kNull; return Literal("null"); }
    return Number(out);
  }

  const std::string& s_;
  size_t i_ = 0;
  std::string error_;
};

// XML well-formedness as far as the SVGs need it: one root element, every
// tag closed in order, attributes quoted and unique per element, only the
// five predefined entities or numeric references, no '<' in text.
inline bool CheckXml(const std::string& x, std::string* error) {
  std::vector<std::string> open;
  bool seen_root = false;
  size_t i = 0;
  auto fail = [&](const std::string& why) {
    *error = why + " at byte " + std::to_string(i);
    return false;
  };
  auto name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.';
  };
  auto check_entities = [&](const std::string& text) {
    for (size_t p = text.find('&'); p != std::string::npos; p = text.find('&', p + 1)) {
      size_t semi = text.find(';', p);
      if (semi == std::string::npos) return false;
      std::string entity = text.substr(p + 1, semi - p - 1);
      if (entity != "amp" && entity != "lt" && entity != "gt" && entity != "quot" &&
          entity != "apos" && (entity.empty() || entity[0] != '#')) {
        return false;
      }
    }
    return true;
  };
  while (i < x.size()) {
    if (x[i] != '<') {
      size_t next = x.find('<', i);
      std::string text = x.substr(i, next == std::string::npos ? std::string::npos : next - i);
      if (open.empty() && text.find_first_not_of(" \n\t\r") != std::string::npos) {
        return fail("text outside the root");
      }
      if (!check_entities(text)) return fail("bad entity in text");
      i = next == std::string::npos ? x.size() : next;
      continue;
    }
    if (x.compare(i, 5, "<?xml") == 0) {
      if (i != 0) return fail("XML declaration not first");
      size_t end = x.find("?>", i);
      if (end == std::string::npos) return fail("unterminated declaration");
      i = end + 2;
      continue;
    }
    if (x.compare(i, 2, "</") == 0) {
      size_t end = x.find('>', i);
      if (end == std::string::npos) return fail("unterminated end tag");
      std::string name = x.substr(i + 2, end - i - 2);
      if (open.empty() || open.back() != name) return fail("mismatched </" + name + ">");
      open.pop_back();
      i = end + 1;
      continue;
    }
    ++i;
    size_t start = i;
    while (i < x.size() && name_char(x[i])) ++i;
    std::string name = x.substr(start, i - start);
    if (name.empty()) return fail("empty tag name");
    if (open.empty()) {
      if (seen_root) return fail("second root element");
      seen_root = true;
    }
    std::vector<std::string> attributes;
    while (true) {
      while (i < x.size() && std::isspace(static_cast<unsigned char>(x[i]))) ++i;
      if (i >= x.size()) return fail("unterminated tag");
      if (x.compare(i, 2, "/>") == 0) { i += 2; break; }
      if (x[i] == '>') { ++i; open.push_back(name); break; }
      size_t attribute_start = i;
      while (i < x.size() && name_char(x[i])) ++i;
      std::string attribute = x.substr(attribute_start, i - attribute_start);
      if (attribute.empty() || i >= x.size() || x[i] != '=') return fail("bad attribute in <" + name + ">");
      for (const std::string& seen : attributes) {
        if (seen == attribute) return fail("duplicate attribute " + attribute);
      }
      attributes.push_back(attribute);
      ++i;
      if (i >= x.size() || (x[i] != '"' && x[i] != '\'')) return fail("unquoted attribute " + attribute);
      char quote = x[i++];
      size_t end = x.find(quote, i);
      if (end == std::string::npos) return fail("unterminated attribute value");
      std::string value = x.substr(i, end - i);
      if (value.find('<') != std::string::npos || !check_entities(value)) {
        return fail("bad character in attribute " + attribute);
      }
      i = end + 1;
    }
  }
  if (!open.empty()) return fail("unclosed <" + open.back() + ">");
  if (!seen_root) return fail("no root element");
  return true;
}

}  // namespace tiercache::bench::testing

#endif  // TIERCACHE_TESTS_BENCH_TOOL_TEST_PARSERS_H_
