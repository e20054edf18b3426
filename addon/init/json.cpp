#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

namespace {

struct Parser {
  const std::string &s;
  size_t i = 0;
  std::string err;
  int depth = 0;

  explicit Parser(const std::string &in) : s(in) {}

  bool fail(const char *what) {
    if (err.empty()) {
      err = what;
      err += " at offset ";
      err += std::to_string(i);
    }
    return false;
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  }
  bool lit(const char *w) {
    size_t n = strlen(w);
    if (s.compare(i, n, w) != 0) return fail("invalid literal");
    i += n;
    return true;
  }
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool hex4(unsigned &cp) {
    if (i + 4 > s.size()) return fail("short \\u escape");
    cp = 0;
    for (int k = 0; k < 4; k++) {
      int h = hex(s[i + k]);
      if (h < 0) return fail("bad \\u escape");
      cp = cp * 16 + h;
    }
    i += 4;
    return true;
  }
  static void utf8(std::string &o, unsigned cp) {
    if (cp < 0x80) {
      o += (char)cp;
    } else if (cp < 0x800) {
      o += (char)(0xC0 | (cp >> 6));
      o += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      o += (char)(0xE0 | (cp >> 12));
      o += (char)(0x80 | ((cp >> 6) & 0x3F));
      o += (char)(0x80 | (cp & 0x3F));
    } else {
      o += (char)(0xF0 | (cp >> 18));
      o += (char)(0x80 | ((cp >> 12) & 0x3F));
      o += (char)(0x80 | ((cp >> 6) & 0x3F));
      o += (char)(0x80 | (cp & 0x3F));
    }
  }
  bool str(std::string &o) {
    if (s[i] != '"') return fail("expected string");
    i++;
    for (;;) {
      if (i >= s.size()) return fail("unterminated string");
      unsigned char c = s[i++];
      if (c == '"') return true;
      if (c < 0x20) return fail("control character in string");
      if (c != '\\') {
        o += (char)c;
        continue;
      }
      if (i >= s.size()) return fail("unterminated escape");
      char e = s[i++];
      switch (e) {
        case '"': o += '"'; break;
        case '\\': o += '\\'; break;
        case '/': o += '/'; break;
        case 'b': o += '\b'; break;
        case 'f': o += '\f'; break;
        case 'n': o += '\n'; break;
        case 'r': o += '\r'; break;
        case 't': o += '\t'; break;
        case 'u': {
          unsigned cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {
            // A high surrogate must be followed by an escaped low surrogate.
            unsigned lo;
            if (i + 2 > s.size() || s[i] != '\\' || s[i + 1] != 'u') return fail("lone surrogate");
            i += 2;
            if (!hex4(lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail("lone surrogate");
          }
          utf8(o, cp);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
  }
  bool num(JValue &v) {
    size_t st = i;
    if (s[i] == '-') i++;
    if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) return fail("bad number");
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
    if (i < s.size() && s[i] == '.') {
      i++;
      if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) return fail("bad number");
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      i++;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) i++;
      if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) return fail("bad number");
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
    }
    v.type = JValue::Number;
    v.text = s.substr(st, i - st);
    return true;
  }
  bool value(JValue &v) {
    if (++depth > 64) return fail("nesting too deep");
    ws();
    if (i >= s.size()) return fail("unexpected end");
    bool ok;
    char c = s[i];
    if (c == '{') {
      v.type = JValue::Object;
      i++;
      ws();
      if (i < s.size() && s[i] == '}') {
        i++;
        ok = true;
      } else {
        for (;;) {
          ws();
          std::string k;
          if (i >= s.size() || !str(k)) return fail("expected key");
          ws();
          if (i >= s.size() || s[i] != ':') return fail("expected ':'");
          i++;
          v.members.emplace_back(std::move(k), JValue());
          if (!value(v.members.back().second)) return false;
          ws();
          if (i < s.size() && s[i] == ',') {
            i++;
            continue;
          }
          if (i < s.size() && s[i] == '}') {
            i++;
            break;
          }
          return fail("expected ',' or '}'");
        }
        ok = true;
      }
    } else if (c == '[') {
      v.type = JValue::Array;
      i++;
      ws();
      if (i < s.size() && s[i] == ']') {
        i++;
        ok = true;
      } else {
        for (;;) {
          v.items.emplace_back();
          if (!value(v.items.back())) return false;
          ws();
          if (i < s.size() && s[i] == ',') {
            i++;
            continue;
          }
          if (i < s.size() && s[i] == ']') {
            i++;
            break;
          }
          return fail("expected ',' or ']'");
        }
        ok = true;
      }
    } else if (c == '"') {
      v.type = JValue::String;
      ok = str(v.text);
    } else if (c == 't') {
      v.type = JValue::Bool;
      v.boolean = true;
      ok = lit("true");
    } else if (c == 'f') {
      v.type = JValue::Bool;
      ok = lit("false");
    } else if (c == 'n') {
      v.type = JValue::Null;
      ok = lit("null");
    } else {
      ok = num(v);
    }
    depth--;
    return ok;
  }
};

}  // namespace

const JValue *JValue::get(const char *key) const {
  if (type != Object) return nullptr;
  for (auto &m : members)
    if (m.first == key) return &m.second;
  return nullptr;
}

bool json_parse(const std::string &in, JValue &out, std::string &err) {
  Parser p(in);
  if (!p.value(out)) {
    err = p.err;
    return false;
  }
  p.ws();
  if (p.i != in.size()) {
    p.fail("trailing data");
    err = p.err;
    return false;
  }
  return true;
}

void json_quote(std::string &out, const std::string &s, bool escape_del) {
  static const char hexd[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (c == 0x7f && escape_del)) {
          out += "\\u00";
          out += hexd[c >> 4];
          out += hexd[c & 15];
        } else {
          out += (char)c;
        }
    }
  }
  out += '"';
}

// Integers only: "1.5" or "1e3" are not valid ids, modes or limits.
static bool parse_int_text(const std::string &t, bool allow_neg, bool &neg, uint64_t &mag) {
  size_t i = 0;
  neg = false;
  if (i < t.size() && t[i] == '-') {
    if (!allow_neg) return false;
    neg = true;
    i++;
  }
  if (i >= t.size()) return false;
  mag = 0;
  for (; i < t.size(); i++) {
    if (t[i] < '0' || t[i] > '9') return false;
    uint64_t d = t[i] - '0';
    if (mag > (UINT64_MAX - d) / 10) return false;
    mag = mag * 10 + d;
  }
  return true;
}

bool json_i64(const JValue &v, int64_t &out) {
  if (v.type != JValue::Number && v.type != JValue::String) return false;
  bool neg;
  uint64_t mag;
  if (!parse_int_text(v.text, true, neg, mag)) return false;
  if (neg) {
    if (mag > (uint64_t)INT64_MAX + 1) return false;
    out = (int64_t)(0 - mag);
  } else {
    if (mag > (uint64_t)INT64_MAX) return false;
    out = (int64_t)mag;
  }
  return true;
}

bool json_u64(const JValue &v, uint64_t &out) {
  if (v.type != JValue::Number && v.type != JValue::String) return false;
  bool neg;
  return parse_int_text(v.text, false, neg, out);
}
