#!/usr/bin/env node
// The init plan's one definition, schemas/plan.schema.json, made into what both sides compile:
//   src/native/plan.gen.ts          the TypeScript types (re-exported by src/native/init-plan.ts);
//   addon/init/plan_schema.gen.inc  the C++ check of every member, type, range and enum, included
//                                   by addon/init/plan_check.cpp (its primitives are written there).
// Both are generated (in .gitignore). Run by scripts/build.mjs (step "plan", before "init") and by
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
const self = fileURLToPath(import.meta.url);

if (process.argv.includes('--if-stale')) {
  const newest = Math.max(...[schemaFile, self].map((f) => fs.statSync(f).mtimeMs));
  const fresh = [outTs, outCpp].every((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs >= newest);
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

function jsdoc(desc, indent) {
  if (!desc) return '';
  const words = desc.split(/\s+/);
  const lines = [];
  let line = '';
  for (const w of words) {
    if (line && indent.length + 3 + line.length + 1 + w.length > 100) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
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

const cstr = (s) => JSON.stringify(s); // the values are plain ASCII (checked below)
let tmpCounter = 0;

/** Code that checks value expression `v` (a const JValue &) at pointer expression `at`. */
function cpp(n, at, v, indent) {
  const I = indent;
  switch (n.k) {
    case 'ref':
      return `${I}check_${n.name}(${at}, ${v});\n`;
    case 'string':
      return `${I}string_value(${at}, ${v}, ${n.rule}, ${n.min}, ${n.max ?? 'kNoLimit'});\n`;
    case 'enum':
      return `${I}enum_value(${at}, ${v}, {${n.values.map(cstr).join(', ')}}, ${cstr(n.title)});\n`;
    case 'const':
      return `${I}const_value(${at}, ${v}, ${cstr(n.value)});\n`;
    case 'integer':
      return `${I}integer(${at}, ${v}, ${n.min}LL, ${n.max}LL);\n`;
    case 'u64':
      return `${I}u64(${at}, ${v});\n`;
    case 'boolean':
      return `${I}boolean(${at}, ${v});\n`;
    case 'nullable':
      return `${I}if (${v}.type != JValue::Null) {\n${cpp(n.inner, at, v, `${I}  `)}${I}}\n`;
    case 'array': {
      const t = tmpCounter++;
      return (
        `${I}{\n${I}  auto &items${t} = array(${at}, ${v}, ${n.min}, ${n.max ?? 'kNoLimit'});\n` +
        `${I}  for (size_t i${t} = 0; i${t} < items${t}.size(); i${t}++) {\n${I}    std::string at${t} = sub(${at}, i${t});\n` +
        cpp(n.item, `at${t}`, `items${t}[i${t}]`, `${I}    `) +
        `${I}  }\n${I}}\n`
      );
    }
    case 'object': {
      const req = n.fields.filter((f) => f.required).map((f) => cstr(f.name));
      const opt = n.fields.filter((f) => !f.required).map((f) => cstr(f.name));
      let out = `${I}members(${at}, ${v}, {${req.join(', ')}}, {${opt.join(', ')}});\n`;
      for (const f of n.fields) {
        const t = tmpCounter++;
        if (f.required) out += `${I}{\n${I}  const JValue &m${t} = *${v}.get(${cstr(f.name)});\n`;
        else out += `${I}if (const JValue *p${t} = ${v}.get(${cstr(f.name)})) {\n${I}  const JValue &m${t} = *p${t};\n`;
        out += cpp(f.node, `sub(${at}, ${cstr(f.name)})`, `m${t}`, `${I}  `) + `${I}}\n`;
      }
      return out;
    }
    case 'union': {
      const t = tmpCounter++;
      let out = `${I}{\n${I}  std::string tag${t} = union_tag(${at}, ${v}, ${cstr(n.tag)});\n`;
      n.variants.forEach((variant, i) => {
        out += `${I}  ${i ? '} else ' : ''}if (tag${t} == ${cstr(variant.value)}) {\n${cpp(variant.node, at, v, `${I}    `)}`;
      });
      out += `${I}  } else {\n${I}    bad(sub(${at}, ${cstr(n.tag)}), "unknown ${n.title} \\"" + tag${t} + "\\"");\n${I}  }\n${I}}\n`;
      return out;
    }
  }
  throw new Error(`no C++ for ${n.k}`);
}

let cc = `// Generated by scripts/build-plan.mjs from schemas/plan.schema.json; do not edit.
// Included by plan_check.cpp inside its anonymous namespace, after the primitives it calls
// (members, string_value, integer, u64, boolean, array, enum_value, const_value, union_tag).

`;
for (const { name } of publicDefs) cc += `void check_${name}(const std::string &at, const JValue &v);\n`;
cc += '\n';
for (const { name, node } of publicDefs) cc += `void check_${name}(const std::string &at, const JValue &v) {\n${cpp(node, 'at', 'v', '  ')}}\n\n`;
cc += `// The whole plan's shape (schemas/plan.schema.json, the root).\nvoid check_shape(const JValue &v) {\n  const std::string at;\n${cpp(rootIr, 'at', 'v', '  ')}}\n`;
if (/[^\x00-\x7f]/.test(cc)) throw new Error('plan schema: the C++ check would hold non-ASCII text');

function writeIfChanged(file, text) {
  // Rewritten even when equal, so that its mtime says it is up to date (make, --if-stale).
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.${process.pid}.tmp`, text);
  fs.renameSync(`${file}.${process.pid}.tmp`, file);
}
writeIfChanged(outTs, ts);
writeIfChanged(outCpp, cc);
console.log(`plan: ${path.relative(root, outTs)}, ${path.relative(root, outCpp)} (from schemas/plan.schema.json)`);
