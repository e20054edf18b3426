#!/usr/bin/env node
// The init plan's one definition, schemas/plan.schema.json, made into what both sides compile:
//   src/native/plan.gen.ts          the TypeScript types (re-exported by src/native/init-plan.ts);
//   addon/init/plan.gen.h           the plan as C++ types (structs, enums, variants), which the init
//                                   reads instead of the JSON tree;
//   addon/init/plan_schema.gen.inc  the C++ check of every member, type, range and enum, which also
//                                   stores each checked value into those types; included by
//                                   addon/init/plan_check.cpp (its primitives are written there).
// All are generated (in .gitignore). Run by scripts/build.mjs (step "plan", before "init") and by
// addon/init/Makefile when the schema or this script is newer than the .inc.
//
//   node scripts/build-plan.mjs              always regenerates
//   node scripts/build-plan.mjs --if-stale   only when an output is missing or older than the
//                                            schema or this script
//   node scripts/build-plan.mjs --schema F --out D   (tests: another schema, outputs into D)
//
// The schema is written in a small subset of JSON Schema, and anything outside it is refused here,
// so that nothing in the schema is silently left unchecked by the C++ side:
//   object   type object, additionalProperties false, properties, required;
//   string   one of the patterns of STRING_RULES (every string says its NUL rule), minLength,
//            maxLength (bytes in C++, code points in ajv); or enum (with an optional title, the noun
//            of the C++ message); const only for a discriminator;
//   integer  minimum and maximum, safe integers (JSON numbers in JavaScript are doubles);
//   u64      the definition of that name: a number or a decimal string;
//   boolean, array (items, minItems, maxItems), anyOf [{type null}, X] for a nullable X,
//   oneOf of objects with discriminator.propertyName (each variant has a const there);
//   $ref     to #/definitions/<name>: names starting with an upper-case letter become exported
//            TypeScript types and C++ functions, the others are inlined.
// The schema is also compiled with ajv (strict) so that a keyword ajv reads differently fails too.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// --schema FILE --out DIR: another schema, both outputs into DIR (the generator's own tests).
const arg = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const schemaFile = path.resolve(arg('--schema') ?? path.join(root, 'schemas/plan.schema.json'));
const outTs = arg('--out') ? path.resolve(arg('--out'), 'plan.gen.ts') : path.join(root, 'src/native/plan.gen.ts');
const outCpp = arg('--out') ? path.resolve(arg('--out'), 'plan_schema.gen.inc') : path.join(root, 'addon/init/plan_schema.gen.inc');
const outH = arg('--out') ? path.resolve(arg('--out'), 'plan.gen.h') : path.join(root, 'addon/init/plan.gen.h');
const self = fileURLToPath(import.meta.url);

if (process.argv.includes('--if-stale')) {
  const newest = Math.max(...[schemaFile, self].map((f) => fs.statSync(f).mtimeMs));
  const fresh = [outTs, outCpp, outH].every((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs >= newest);
  if (fresh) process.exit(0);
}

// The string patterns the C++ side knows, by what they mean.
const STRING_RULES = {
  '^[^\\u0000]*$': 'kText',
  '^/[^\\u0000]*$': 'kAbsolutePath',
  '^(/[^\\u0000]*)?$': 'kAbsolutePathOrEmpty',
};
// Their descriptions are not repeated on every property that uses them.
const STRING_DEFS = { text: 1, absolutePath: 1, absolutePathOrEmpty: 1 };
// 0 .. 18446744073709551615, decimal, no leading zero (what json_u64 and u64() accept).
const U64_STRING =
  '^(0|[1-9][0-9]{0,18}|1[0-7][0-9]{18}|18[0-3][0-9]{17}|184[0-3][0-9]{16}|1844[0-5][0-9]{15}|18446[0-6][0-9]{14}|184467[0-3][0-9]{13}|1844674[0-3][0-9]{12}|184467440[0-6][0-9]{10}|1844674407[0-2][0-9]{9}|18446744073[0-6][0-9]{8}|1844674407370[0-8][0-9]{6}|18446744073709[0-4][0-9]{5}|184467440737095[0-4][0-9]{4}|18446744073709550[0-9]{3}|18446744073709551[0-5][0-9]{2}|1844674407370955160[0-9]{1}|1844674407370955161[0-5])$';

const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
{
  const require = createRequire(path.join(root, 'package.json'));
  const Ajv = require('ajv').default;
  new Ajv({ strict: true, discriminator: true, allErrors: true }).compile(schema);
}
const defs = schema.definitions ?? {};

function fail(where, what) {
  console.error(`${path.relative(root, schemaFile)} ${where}: ${what}`);
  process.exit(1);
}

function allowOnly(where, node, keys) {
  for (const k of Object.keys(node)) if (!keys.includes(k)) fail(where, `keyword "${k}" is not in the subset build-plan.mjs translates`);
}

const isPublic = (name) => /^[A-Z]/.test(name);

/** Schema node → IR: { k, ... , desc }. Refs to public definitions stay refs. */
function ir(node, where) {
  const desc = node.description;
  if (node.$ref) {
    allowOnly(where, node, ['$ref', 'description']);
    const m = /^#\/definitions\/([A-Za-z0-9]+)$/.exec(node.$ref);
    if (!m || !defs[m[1]]) fail(where, `unknown $ref ${node.$ref}`);
    const name = m[1];
    if (isPublic(name)) return { k: 'ref', name, desc };
    // A property's own description, else the definition's (but "a string without NUL" on every
    // string would say nothing).
    const inner = ir(defs[name], `#/definitions/${name}`);
    return { ...inner, desc: desc ?? (name in STRING_DEFS ? undefined : inner.desc) };
  }
  if (node.anyOf) {
    if (where === '#/definitions/u64') return u64Node(node, where);
    allowOnly(where, node, ['anyOf', 'description']);
    if (node.anyOf.length !== 2 || JSON.stringify(node.anyOf[0]) !== '{"type":"null"}') fail(where, 'anyOf must be [{"type":"null"}, X]');
    return { k: 'nullable', inner: ir(node.anyOf[1], `${where}/anyOf/1`), desc };
  }
  if (node.oneOf) {
    allowOnly(where, node, ['oneOf', 'discriminator', 'type', 'title', 'description']);
    const tag = node.discriminator?.propertyName;
    if (!tag || node.type !== 'object') fail(where, 'oneOf needs type object and discriminator.propertyName');
    const variants = node.oneOf.map((v, i) => {
      const w = `${where}/oneOf/${i}`;
      const target = v.$ref ? defs[v.$ref.replace('#/definitions/', '')] : v;
      const value = target?.properties?.[tag]?.const;
      if (typeof value !== 'string' || !target.required?.includes(tag)) fail(w, `a variant needs a required "${tag}" with a const string`);
      return { value, node: ir(v, w) };
    });
    return { k: 'union', tag, title: node.title ?? 'value', variants, desc };
  }
  if ('const' in node) {
    allowOnly(where, node, ['const', 'description']);
    if (typeof node.const !== 'string') fail(where, 'const must be a string');
    return { k: 'const', value: node.const, desc };
  }
  switch (node.type) {
    case 'object': {
      allowOnly(where, node, ['type', 'additionalProperties', 'required', 'properties', 'description', 'title']);
      if (node.additionalProperties !== false) fail(where, 'objects must have additionalProperties: false');
      const required = node.required ?? [];
      const props = node.properties ?? {};
      for (const r of required) if (!(r in props)) fail(where, `required "${r}" is not a property`);
      const fields = Object.entries(props).map(([name, p]) => ({ name, required: required.includes(name), node: ir(p, `${where}/properties/${name}`) }));
      return { k: 'object', fields, desc };
    }
    case 'string': {
      if (node.enum) {
        allowOnly(where, node, ['type', 'enum', 'title', 'description']);
        if (!node.enum.every((e) => typeof e === 'string' && !e.includes('\0'))) fail(where, 'enum values must be strings');
        return { k: 'enum', values: node.enum, title: node.title ?? 'value', desc };
      }
      allowOnly(where, node, ['type', 'pattern', 'minLength', 'maxLength', 'description']);
      const rule = STRING_RULES[node.pattern];
      if (!rule) fail(where, `a string needs one of the patterns ${Object.keys(STRING_RULES).join(' ')}`);
      return { k: 'string', rule, min: node.minLength ?? 0, max: node.maxLength ?? null, desc };
    }
    case 'integer': {
      allowOnly(where, node, ['type', 'minimum', 'maximum', 'description']);
      for (const b of ['minimum', 'maximum']) if (!Number.isSafeInteger(node[b])) fail(where, `${b} must be a safe integer`);
      if (node.minimum > node.maximum) fail(where, 'minimum above maximum');
      return { k: 'integer', min: node.minimum, max: node.maximum, desc };
    }
    case 'boolean':
      allowOnly(where, node, ['type', 'description']);
      return { k: 'boolean', desc };
    case 'array': {
      allowOnly(where, node, ['type', 'items', 'minItems', 'maxItems', 'description']);
      if (!node.items || Array.isArray(node.items)) fail(where, 'arrays need one items schema');
      return { k: 'array', item: ir(node.items, `${where}/items`), min: node.minItems ?? 0, max: node.maxItems ?? null, desc };
    }
    default:
      fail(where, `type ${JSON.stringify(node.type)} is not in the subset`);
  }
}

function u64Node(node, where) {
  const [n, s] = node.anyOf;
  // 2^64-1 as a JavaScript number is 2^64: ajv may let 2^64 through as a number; the init refuses it.
  if (n?.type !== 'integer' || n.minimum !== 0 || n.maximum !== 18446744073709551615 || s?.type !== 'string' || s.pattern !== U64_STRING)
    fail(where, 'u64 must be [{integer 0..18446744073709551615}, {string decimal}]');
  return { k: 'u64', desc: node.description };
}

const { $schema, $id, title, definitions, ...rootNode } = schema;
const rootIr = ir(rootNode, '#');
const publicDefs = Object.keys(defs).filter(isPublic).map((name) => ({ name, node: ir(defs[name], `#/definitions/${name}`) }));

// ---------------------------------------------------------------- TypeScript

// A description as lines of at most 100 characters once indented and prefixed (" * ", "// ").
function wrap(desc, indent) {
  const lines = [];
  let line = '';
  for (const w of desc.split(/\s+/)) {
    if (line && indent.length + 3 + line.length + 1 + w.length > 100) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines;
}

function jsdoc(desc, indent) {
  if (!desc) return '';
  const lines = wrap(desc, indent);
  const body = lines.map((l) => l.replace(/\*\//g, '*\\/'));
  if (body.length === 1 && indent.length + body[0].length + 7 <= 100) return `${indent}/** ${body[0]} */\n`;
  return `${indent}/**\n${body.map((l) => `${indent} * ${l}`).join('\n')}\n${indent} */\n`;
}

function tsType(n, indent) {
  switch (n.k) {
    case 'ref':
      return n.name;
    case 'string':
      return 'string';
    case 'enum':
      return n.values.map((v) => `'${v}'`).join(' | ');
    case 'const':
      return `'${n.value}'`;
    case 'integer':
      return 'number';
    case 'u64':
      return 'number | string';
    case 'boolean':
      return 'boolean';
    case 'nullable':
      return `${tsType(n.inner, indent)} | null`;
    case 'array': {
      const t = tsType(n.item, indent);
      return /[|{ ]/.test(t) && !/^\{[\s\S]*\}$/.test(t) ? `(${t})[]` : `${t}[]`;
    }
    case 'object':
      return `{\n${jsdoc(n.variantDesc, `${indent}  `)}${tsFields(n, `${indent}  `)}${indent}}`;
    case 'union':
      return n.variants.map((v) => `\n${indent}  | ${tsType(v.node.k === 'object' ? { ...v.node, variantDesc: v.node.desc } : v.node, `${indent}    `)}`).join('');
  }
  throw new Error(`no TypeScript for ${n.k}`);
}

function tsFields(obj, indent) {
  return obj.fields.map((f) => `${jsdoc(f.node.desc, indent)}${indent}${f.name}${f.required ? '' : '?'}: ${tsType(f.node, indent)};\n`).join('');
}

let ts = `// Generated by scripts/build-plan.mjs from schemas/plan.schema.json; do not edit.
// The plan's shape is defined there (and checked from it by tsrun-init); src/native/init-plan.ts
// re-exports these types.
/* eslint-disable */

`;
for (const { name, node } of publicDefs) {
  ts += jsdoc(node.desc, '');
  if (node.k === 'object') ts += `export interface ${name} {\n${tsFields(node, '  ')}}\n\n`;
  else ts += `export type ${name} =${node.k === 'union' ? '' : ' '}${tsType(node, '')};\n\n`;
}
ts += `/** The whole plan: what \`tsrun-init\` reads as one JSON line (addon/init/PROTOCOL.md). */\nexport type ${title} =${tsType(rootIr, '')};\n`;

// ---------------------------------------------------------------- C++
//
// Two files from the same IR, so that the check and the typed plan cannot disagree:
//   plan.gen.h           the plan as C++ types: a struct per object (an optional member is a
//                        std::optional, a nullable value too), an enum class per enum, a
//                        std::variant per oneOf (the discriminator is the alternative's type, so
//                        the const member itself is not stored), std::vector for arrays, and for
//                        integers the smallest of uint32_t/uint64_t/int32_t/int64_t that holds the
//                        schema's whole range (so no value the check lets through is truncated);
//   plan_schema.gen.inc  parse_<Name>(): one walk that checks every node (the primitives of
//                        plan_check.cpp die with "plan: <pointer>: ..." at the first problem, in
//                        the schema's order) and stores what it checked into those types.

const cstr = (s) => JSON.stringify(s); // the values are plain ASCII (checked below)
const cap = (s) => s[0].toUpperCase() + s.slice(1);
const CPP_KEYWORDS = new Set(
  ('alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t char32_t class compl const constexpr ' +
    'const_cast continue decltype default delete do double dynamic_cast else enum explicit export extern false float for friend ' +
    'goto if inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public ' +
    'register reinterpret_cast return short signed sizeof static static_assert static_cast struct switch template this ' +
    'thread_local throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq').split(' '),
);
function cppIdent(where, name) {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || CPP_KEYWORDS.has(name)) fail(where, `"${name}" is not usable as a C++ name`);
  return name;
}

// Names for the types of inline objects, enums and unions: where they are (owner + member, an
// array's entries + "Entry", a oneOf alternative + its discriminator value); public definitions
// keep their own name.
function nameTypes(n, ctx, where) {
  switch (n.k) {
    case 'object':
      n.cname = cppIdent(where, ctx);
      for (const f of n.fields) nameTypes(f.node, ctx + cap(cppIdent(where, f.name)), `${where}/${f.name}`);
      break;
    case 'enum':
      n.cname = cppIdent(where, ctx);
      n.idents = n.values.map((v) => cppIdent(where, `k${cap(v.replace(/[^A-Za-z0-9]/g, '_'))}`));
      if (new Set(n.idents).size !== n.idents.length) fail(where, 'enum values that make the same C++ name');
      break;
    case 'union':
      n.cname = cppIdent(where, ctx);
      for (const v of n.variants) nameTypes(v.node, ctx + cap(v.value.replace(/[^A-Za-z0-9]/g, '_')), `${where}/${v.value}`);
      break;
    case 'nullable':
      nameTypes(n.inner, ctx, where);
      break;
    case 'array':
      nameTypes(n.item, `${ctx}Entry`, where);
      break;
  }
}
for (const { name, node } of publicDefs) nameTypes(node, name, `#/definitions/${name}`);
nameTypes(rootIr, cppIdent('#', title), '#');
const publicByName = new Map(publicDefs.map((d) => [d.name, d.node]));

function intType(n) {
  if (n.min >= 0) return n.max <= 4294967295 ? 'uint32_t' : 'uint64_t';
  return n.min >= -2147483648 && n.max <= 2147483647 ? 'int32_t' : 'int64_t';
}

/** The C++ type of a node (undefined for a const: a discriminator is not stored). */
function ctype(n) {
  switch (n.k) {
    case 'ref':
      return n.name;
    case 'string':
      return 'std::string';
    case 'enum':
    case 'object':
    case 'union':
      return n.cname;
    case 'const':
      return undefined;
    case 'integer':
      return intType(n);
    case 'u64':
      return 'uint64_t';
    case 'boolean':
      return 'bool';
    case 'nullable':
      return `std::optional<${ctype(n.inner)}>`;
    case 'array':
      return `std::vector<${ctype(n.item)}>`;
  }
  throw new Error(`no C++ type for ${n.k}`);
}

function cppComment(desc, indent) {
  return desc ? wrap(desc, indent).map((l) => `${indent}// ${l}\n`).join('') : '';
}

// Declarations in dependency order (std::optional and std::variant need complete types).
let decls = '';
const declared = new Set();
function declare(n) {
  switch (n.k) {
    case 'ref':
      if (!declared.has(n.name)) declare(publicByName.get(n.name));
      return;
    case 'nullable':
      return declare(n.inner);
    case 'array':
      return declare(n.item);
    case 'enum': {
      if (declared.has(n.cname)) return;
      declared.add(n.cname);
      decls += `${cppComment(n.desc, '')}enum class ${n.cname} { ${n.idents.join(', ')} };\n`;
      decls += `inline const char *enum_name(${n.cname} v) {\n  static const char *const names[] = {${n.values.map(cstr).join(', ')}};\n  return names[static_cast<int>(v)];\n}\n\n`;
      return;
    }
    case 'object': {
      if (declared.has(n.cname)) return;
      declared.add(n.cname);
      for (const f of n.fields) declare(f.node);
      let body = '';
      for (const f of n.fields) {
        const t = ctype(f.node);
        if (!t) continue;
        body += `${cppComment(f.node.desc, '  ')}  ${f.required ? t : `std::optional<${t}>`} ${f.name}{};\n`;
      }
      decls += `${cppComment(n.desc, '')}struct ${n.cname} {\n${body}};\n\n`;
      return;
    }
    case 'union': {
      if (declared.has(n.cname)) return;
      declared.add(n.cname);
      for (const v of n.variants) declare(v.node);
      decls += `${cppComment(n.desc, '')}using ${n.cname} = std::variant<${n.variants.map((v) => ctype(v.node)).join(', ')}>;\n\n`;
      return;
    }
  }
}
for (const { node } of publicDefs) declare(node);
declare(rootIr);

let hdr = `// Generated by scripts/build-plan.mjs from schemas/plan.schema.json; do not edit.
// The init plan as C++ types (what the schema's descriptions say is not repeated here beyond a
// line). check_plan (plan_check.cpp) fills them once, after checking every field; the init reads
// the plan only through them.
#pragma once
#include <stdint.h>

#include <optional>
#include <string>
#include <variant>
#include <vector>

${decls}`;

let tmpCounter = 0;

/** Code that checks value expression `v` (a const JValue &) at pointer expression `at` and stores it in lvalue `out`. */
function cpp(n, at, v, out, indent) {
  const I = indent;
  switch (n.k) {
    case 'ref':
      return `${I}parse_${n.name}(${at}, ${v}, ${out});\n`;
    case 'string':
      return `${I}${out} = string_value(${at}, ${v}, ${n.rule}, ${n.min}, ${n.max ?? 'kNoLimit'});\n`;
    case 'enum':
      return `${I}${out} = static_cast<${n.cname}>(enum_value(${at}, ${v}, {${n.values.map(cstr).join(', ')}}, ${cstr(n.title)}));\n`;
    case 'const':
      return `${I}const_value(${at}, ${v}, ${cstr(n.value)});\n`;
    case 'integer':
      // The type holds the whole range (intType), so the cast never changes the value.
      return `${I}${out} = static_cast<${intType(n)}>(integer(${at}, ${v}, ${n.min}LL, ${n.max}LL));\n`;
    case 'u64':
      return `${I}${out} = u64(${at}, ${v});\n`;
    case 'boolean':
      return `${I}${out} = boolean(${at}, ${v});\n`;
    case 'nullable':
      return `${I}if (${v}.type != JValue::Null) {\n${I}  ${out}.emplace();\n${cpp(n.inner, at, v, `(*${out})`, `${I}  `)}${I}}\n`;
    case 'array': {
      const t = tmpCounter++;
      return (
        `${I}{\n${I}  auto &items${t} = array(${at}, ${v}, ${n.min}, ${n.max ?? 'kNoLimit'});\n` +
        `${I}  ${out}.resize(items${t}.size());\n` +
        `${I}  for (size_t i${t} = 0; i${t} < items${t}.size(); i${t}++) {\n${I}    std::string at${t} = sub(${at}, i${t});\n` +
        cpp(n.item, `at${t}`, `items${t}[i${t}]`, `${out}[i${t}]`, `${I}    `) +
        `${I}  }\n${I}}\n`
      );
    }
    case 'object': {
      const req = n.fields.filter((f) => f.required).map((f) => cstr(f.name));
      const opt = n.fields.filter((f) => !f.required).map((f) => cstr(f.name));
      let code = `${I}members(${at}, ${v}, {${req.join(', ')}}, {${opt.join(', ')}});\n`;
      for (const f of n.fields) {
        const t = tmpCounter++;
        const target = `${out}.${f.name}`;
        if (f.required) code += `${I}{\n${I}  const JValue &m${t} = *${v}.get(${cstr(f.name)});\n`;
        else code += `${I}if (const JValue *p${t} = ${v}.get(${cstr(f.name)})) {\n${I}  const JValue &m${t} = *p${t};\n${ctype(f.node) ? `${I}  ${target}.emplace();\n` : ''}`;
        code += cpp(f.node, `sub(${at}, ${cstr(f.name)})`, `m${t}`, f.required ? target : `(*${target})`, `${I}  `) + `${I}}\n`;
      }
      return code;
    }
    case 'union': {
      const t = tmpCounter++;
      let code = `${I}{\n${I}  std::string tag${t} = union_tag(${at}, ${v}, ${cstr(n.tag)});\n`;
      n.variants.forEach((variant, i) => {
        code += `${I}  ${i ? '} else ' : ''}if (tag${t} == ${cstr(variant.value)}) {\n`;
        code += `${I}    auto &alt${t} = ${out}.emplace<${ctype(variant.node)}>();\n${cpp(variant.node, at, v, `alt${t}`, `${I}    `)}`;
      });
      code += `${I}  } else {\n${I}    bad(sub(${at}, ${cstr(n.tag)}), "unknown ${n.title} \\"" + tag${t} + "\\"");\n${I}  }\n${I}}\n`;
      return code;
    }
  }
  throw new Error(`no C++ for ${n.k}`);
}

let cc = `// Generated by scripts/build-plan.mjs from schemas/plan.schema.json; do not edit.
// Included by plan_check.cpp inside its anonymous namespace, after the primitives it calls
// (members, string_value, integer, u64, boolean, array, enum_value, const_value, union_tag).
// Each parse_<Name> checks a value against the schema and stores it into the plan.gen.h type.

`;
for (const { name } of publicDefs) cc += `void parse_${name}(const std::string &at, const JValue &v, ${name} &out);\n`;
cc += '\n';
for (const { name, node } of publicDefs) cc += `void parse_${name}(const std::string &at, const JValue &v, ${name} &out) {\n${cpp(node, 'at', 'v', 'out', '  ')}}\n\n`;
cc += `// The whole plan (schemas/plan.schema.json, the root).\nvoid parse_shape(const JValue &v, ${title} &out) {\n  const std::string at;\n${cpp(rootIr, 'at', 'v', 'out', '  ')}}\n`;
for (const [what, text] of [['check', cc], ['types', hdr]])
  if (/[^\x00-\x7f]/.test(text)) throw new Error(`plan schema: the C++ ${what} would hold non-ASCII text`);

function writeIfChanged(file, text) {
  // Rewritten even when equal, so that its mtime says it is up to date (make, --if-stale).
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.${process.pid}.tmp`, text);
  fs.renameSync(`${file}.${process.pid}.tmp`, file);
}
writeIfChanged(outTs, ts);
writeIfChanged(outCpp, cc);
writeIfChanged(outH, hdr);
console.log(`plan: ${path.relative(root, outTs)}, ${path.relative(root, outCpp)}, ${path.relative(root, outH)} (from schemas/plan.schema.json)`);
