// A small JSON reader for the init plan and a string escaper for messages. The plan comes from our
// own TypeScript, but it is still parsed strictly: a malformed plan is an error, never a guess.
#pragma once
#include <stdint.h>
#include <string>
#include <utility>
#include <vector>

struct JValue {
  enum Type { Null, Bool, Number, String, Array, Object };
  Type type = Null;
  bool boolean = false;
  // String contents, or the literal text of a number (kept so u64 values lose no precision).
  std::string text;
  std::vector<JValue> items;
  std::vector<std::pair<std::string, JValue>> members;

  const JValue *get(const char *key) const;
};

// Parses `in` into `out`; on failure returns false and fills `err` with a description.
bool json_parse(const std::string &in, JValue &out, std::string &err);

// Appends `s` as a quoted JSON string (control characters escaped, so never a raw newline).
// escape_del: DEL (0x7f) as \u007f too (the init's messages); false gives JSON.stringify's form.
void json_quote(std::string &out, const std::string &s, bool escape_del = true);

// Number conversions of a JValue: a JSON number, or (for u64/i64) a decimal string.
bool json_i64(const JValue &v, int64_t &out);
bool json_u64(const JValue &v, uint64_t &out);
