#include "tools/bench/config_file.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "runtime/config.h"

namespace tiercache::bench {
namespace {

class FlatJsonReader {
 public:
  explicit FlatJsonReader(std::string_view text) : text_(text) {}

  Result<ConfigEntries> Read() {
    ConfigEntries entries;
    SkipSpace();
    if (!Consume('{')) return Error("expected '{'");
    SkipSpace();
    if (Consume('}')) return Finish(std::move(entries));
    while (true) {
      SkipSpace();
      std::string key;
      if (!ReadString(&key)) return Error("expected a quoted key");
      SkipSpace();
      if (!Consume(':')) return Error("expected ':' after key '" + key + "'");
      SkipSpace();
      std::string value;
      if (!ReadScalar(&value)) return Error("expected a string, number or boolean for '" + key + "'");
      entries.emplace_back(std::move(key), std::move(value));
      SkipSpace();
      if (Consume('}')) return Finish(std::move(entries));
      if (!Consume(',')) return Error("expected ',' or '}'");
    }
  }

 private:
  Result<ConfigEntries> Finish(ConfigEntries entries) {
    SkipSpace();
    if (position_ != text_.size()) return Error("text after the closing '}'");
    return entries;
  }
  Status Error(const std::string& what) const {
    return Status::InvalidArgument("at byte " + std::to_string(position_) + ": " + what);
  }
  void SkipSpace() {
    while (position_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[position_]))) {
      ++position_;
    }
  }
  bool Consume(char c) {
    if (position_ < text_.size() && text_[position_] == c) {
      ++position_;
      return true;
    }
    return false;
  }
  bool ReadString(std::string* out) {
    if (!Consume('"')) return false;
    while (position_ < text_.size()) {
      char c = text_[position_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c == '\\') {
        if (position_ >= text_.size()) return false;
        char escaped = text_[position_++];
        switch (escaped) {
          case '"': case '\\': case '/': out->push_back(escaped); break;
          case 'n': out->push_back('\n'); break;
          case 't': out->push_back('\t'); break;
          case 'r': out->push_back('\r'); break;
          case 'b': out->push_back('\b'); break;
          case 'f': out->push_back('\f'); break;
          default: return false;  // \u escapes have no use in setting values
        }
      } else {
        out->push_back(c);
      }
    }
    return false;
  }
  bool ReadScalar(std::string* out) {
    if (position_ < text_.size() && text_[position_] == '"') return ReadString(out);
    size_t start = position_;
    while (position_ < text_.size()) {
      char c = text_[position_];
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+')) break;
      ++position_;
    }
    *out = std::string(text_.substr(start, position_ - start));
    if (out->empty()) return false;
    if (*out == "true" || *out == "false") return true;
    // A JSON number: digits with an optional sign, fraction and exponent.
    bool digit = false;
    for (char c : *out) {
      if (std::isdigit(static_cast<unsigned char>(c))) digit = true;
      else if (c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E') return false;
    }
    return digit;
  }

  std::string_view text_;
  size_t position_ = 0;
};

}  // namespace

Result<ConfigEntries> ParseConfigText(std::string_view text) { return FlatJsonReader(text).Read(); }

Result<ConfigEntries> ReadConfigFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return Status::NotFound("config file " + path + ": cannot be opened");
  std::stringstream contents;
  contents << file.rdbuf();
  Result<ConfigEntries> entries = ParseConfigText(contents.str());
  if (!entries.ok()) {
    return Status::InvalidArgument("config file " + path + ": " + entries.status().message());
  }
  return entries;
}

bool IsRuntimeConfigKey(const std::string& key) {
  for (const std::string& field : ConfigFieldNames()) {
    if (key == field) return true;
  }
  return false;
}

}  // namespace tiercache::bench
