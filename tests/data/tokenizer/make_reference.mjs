// Writes hf_reference.json: what the reference implementations produce for MiniMind's tokenizer,
// for the C++ tests to reproduce exactly (tests/tokenizer/hf_reference_test.cpp).
//   - encodings: HF tokenizers (the Rust library, npm "tokenizers") on curated and random texts,
//     with the pre-tokenizer pieces of each;
//   - variants: the same tokenizer with one option changed (prefix space, no regex, normalized added
//     tokens, ignore_merges, unk/fuse_unk), as a JSON merge patch plus the ids HF gives;
//   - decodes: HF decode (with and without skip_special_tokens), ids that split characters included;
//   - chats: MiniMind's Jinja chat template rendered by @huggingface/jinja.
// Not run by the build. Usage, in a scratch folder outside the repository:
//   npm install tokenizers@0.23.2 @huggingface/jinja@0.5.11
//   node make_reference.mjs MINIMIND_DIR OUT.json [CHRONOS_TOKENIZER_CONFIG.json]
// With the third argument, the Jinja template Chronos writes is checked to render every chat the
// same way as MiniMind's.
import { createRequire } from "module";
import fs from "fs";
import path from "path";

const require = createRequire(process.cwd() + "/");
const { Tokenizer } = require("tokenizers");
const { Template } = await import(require.resolve("@huggingface/jinja"));
const versions = {
  tokenizers: require("tokenizers/package.json").version,
  jinja: JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve("@huggingface/jinja")), "..", "package.json"))).version,
};

const [minimindDir, outPath, chronosConfigPath] = process.argv.slice(2);
const baseJson = JSON.parse(fs.readFileSync(path.join(minimindDir, "tokenizer.json"), "utf8"));
const baseConfig = JSON.parse(fs.readFileSync(path.join(minimindDir, "tokenizer_config.json"), "utf8"));
const base = Tokenizer.fromString(JSON.stringify(baseJson));

// Deterministic PRNG (mulberry32) so the fixture is reproducible.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Byte-level stand-ins back to text, for the pieces (they always end on character boundaries).
const byteOf = new Map();
{
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    byteOf.set(String.fromCodePoint(printable ? b : next++), b);
  }
}
const unByteLevel = (s) => Buffer.from([...s].map((c) => byteOf.get(c))).toString("utf8");

const curated = [
  "<|im_start|>assistant\n",
  "<|im_end|>\n",
  "<think>\n\n</think>\n\n",
  "",
  " ",
  "Hello, world! It's a test: don't, won't, we'll, they're, I've, I'm, he'd.",
  "HE'S SHOUTING 'QUOTED' 'S 's",
  "The quick brown fox jumps over the lazy dog 1234567890 times.",
  "路由器预测专家，缓存命中率提高了百分之三十。",
  "混合专家模型（MoE）在推理时只激活一部分参数。",
  "日本語のテキストとカタカナ、ひらがな。한국어 텍스트도 있습니다.",
  "Ελληνικά κείμενα και русский текст, עברית, العربية ٣٤٥",
  "emoji 😀👍🏽👨‍👩‍👧 ❤️ 🇫🇷 and 🤖!",
  "combining: e\u0301 a\u0308 n\u0303; precomposed: é ä ñ; ligature ﬁ",
  "def f(x):\n    return x ** 2  # square\n\n\tif x > 0:\n\t\tpass\n",
  "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
  "   leading spaces and trailing spaces   ",
  "many\n\n\n\nnewlines\r\n\r\nand   \t  mixed \u00a0 white\u3000space\u2028here ",
  "numbers: 3.14159, 1,000,000, 2024-11-22, ½ ⅓ Ⅻ ²",
  "url https://example.com/path?q=1&r=two#frag and mail a.b@c.de",
  "<|im_start|>user\nwhat is lookahead prefetch<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nrouter cache expert<|im_end|>\n",
  "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call><|buffer1|><|endoftext|>",
  "<|im_start|><|im_start|>x<|im_end|<|im_end|>>",
  "control \u0001\u0002\u001b[0m\u007f chars",
  "\u0085 next line \u00ad soft hyphen \u200b zero width \ufeff bom",
  "ǅungla ʰaspirated ǈ titlecase ʼapostrophe",
  "𠀀𠀁 extension B, 𱍐 extension H, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math",
  "x" + " ".repeat(40) + "y" + "!".repeat(30) + "a".repeat(50),
];

const fragments = [
  "a", "Z", "the", "Hello", "é", "ß", "ǅ", "ʰ", "中", "文字", "𠀀", "𱍐", "٣", "½", "Ⅻ", "0", "42", "3.5",
  " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b", "\u000b",
  "'", "'s", "'S", "'ll", "'re", "'ve", "'m", "'d", "'t", "'x", "!", "?", "...", "-", "_", "@", "#", "\"",
  "😀", "👍🏽", "👨‍👩‍👧", "\u0301", "e\u0301", "ﬁ", "\u0001", "\u007f", "<", ">", "|",
  "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>", "<tool_call>", "<|buffer9|>",
];
const random = [];
{
  const next = rng(20260421);
  for (let i = 0; i < 240; i++) {
    let s = "";
    const n = 1 + Math.floor(next() * 12);
    for (let j = 0; j < n; j++) s += fragments[Math.floor(next() * fragments.length)];
    random.push(s);
  }
}

async function encode(tok, text) {
  return (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
}

const out = { versions, encodings: [], variants: [], decodes: [], chats: [] };
const pre = base.getPreTokenizer();
for (const text of [...curated, ...random]) {
  out.encodings.push({ text, ids: await encode(base, text), pieces: pre.preTokenizeString(text).map((p) => unByteLevel(p[0])) });
}

// Variants: a JSON merge patch on tokenizer.json, then HF's ids for a few texts.
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const result = target && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = mergePatch(result[k], v);
  }
  return result;
}
const addedWith = (extra, change = {}) =>
  baseJson.added_tokens.map((t) => ({ ...t, ...(change[t.content] || {}) })).concat(extra);
const variantTexts = [
  "Hello world", " already spaced", "<|im_start|>user\nhi there<|im_end|>\n<think>x</think>", "<think>think thinking",
  "a<|im_start|>b", "<|im_start|>", "<|im", "x\u0000y\u0000\u0000z \u0000", "unbelievable tokenization", "  two  spaces  ",
  "中文 text", "", "<|im_start|><|im_end|>",
];
const variants = [
  { name: "add_prefix_space", patch: { pre_tokenizer: { add_prefix_space: true } } },
  { name: "no_regex", patch: { pre_tokenizer: { use_regex: false } } },
  { name: "ignore_merges", patch: { model: { ignore_merges: true } } },
  {
    // "<think>" becomes a normalized token; "<thi" and "<|im" are raw tokens that the first pass
    // finds before it, and leftmost-longest picks "<|im_start|>" over "<|im".
    name: "normalized_added_tokens",
    patch: {
      added_tokens: addedWith(
        [
          { id: 6400, content: "<thi", single_word: false, lstrip: false, rstrip: false, normalized: false, special: false },
          { id: 6401, content: "<|im", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
          { id: 6402, content: "think", single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
        ],
        { "<think>": { normalized: true } },
      ),
    },
  },
  { name: "unk", patch: { model: { unk_token: "<|endoftext|>", vocab: { "Ā": null } } } },
  { name: "fuse_unk", patch: { model: { unk_token: "<|endoftext|>", fuse_unk: true, vocab: { "Ā": null } } } },
];
for (const v of variants) {
  const tok = Tokenizer.fromString(JSON.stringify(mergePatch(baseJson, v.patch)));
  const cases = [];
  for (const text of variantTexts) cases.push({ text, ids: await encode(tok, text) });
  out.variants.push({ name: v.name, patch: v.patch, cases });
}

// Decodes: whole encodings, prefixes that cut characters, and special tokens with and without skipping.
for (const text of ["emoji 😀👍🏽 end", "中文字符", "<|im_start|>assistant\n<think>\n\n</think>\n\nok<|im_end|>\n", "a<tool_call>b<|buffer3|>c<|endoftext|>"]) {
  const ids = await encode(base, text);
  for (let cut = 1; cut <= ids.length; cut++) {
    const part = ids.slice(0, cut);
    for (const skip of [false, true]) out.decodes.push({ ids: part, skip_special: skip, text: await base.decode(part, skip) });
  }
}

// Chats: MiniMind's template (the reference), rendered by @huggingface/jinja.
const minimindTemplate = new Template(baseConfig.chat_template);
const chronosTemplate = chronosConfigPath ? new Template(JSON.parse(fs.readFileSync(chronosConfigPath, "utf8")).chat_template) : null;
const weather = { type: "function", function: { name: "get_weather", description: "Weather of a city", parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city"] } } };
const chats = [
  { name: "spec_example", messages: [{ role: "user", content: "what is lookahead prefetch" }, { role: "assistant", content: "router cache expert" }] },
  { name: "system_user", messages: [{ role: "system", content: "You are Chronos." }, { role: "user", content: "hi" }], add_generation_prompt: true },
  { name: "open_thinking", messages: [{ role: "user", content: "think first" }], add_generation_prompt: true, open_thinking: true },
  { name: "generation_prompt_only", messages: [], add_generation_prompt: true },
  { name: "reasoning_content", messages: [{ role: "user", content: "2+2?" }, { role: "assistant", content: "\n\n4", reasoning_content: "\n\nadd two and two\n" }] },
  { name: "think_in_content", messages: [{ role: "user", content: "q" }, { role: "assistant", content: "<think>\nstep one\nstep two\n</think>\n\nanswer" }] },
  { name: "think_close_only", messages: [{ role: "user", content: "q" }, { role: "assistant", content: "just reasoning\n</think>answer\n" }] },
  { name: "multi_turn", messages: [{ role: "system", content: "sys" }, { role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: "c" }, { role: "assistant", content: "d" }, { role: "system", content: "late system" }, { role: "user", content: "e" }] },
  { name: "tools_with_system", messages: [{ role: "system", content: "Use tools." }, { role: "user", content: "weather in Paris?" }], tools: [weather] },
  { name: "tools_without_system", messages: [{ role: "user", content: "weather?" }], tools: [weather, { name: "noop", parameters: {} }], add_generation_prompt: true },
  {
    name: "tool_calls_and_responses",
    messages: [
      { role: "user", content: "weather in Paris and Köln?" },
      { role: "assistant", content: "", tool_calls: [{ type: "function", function: { name: "get_weather", arguments: { city: "Paris", days: 2 } } }, { name: "get_weather", arguments: "{\"city\": \"Köln\"}" }] },
      { role: "tool", content: "{\"temp\": 21}" },
      { role: "tool", content: "sunny\n\"quoted\"" },
      { role: "assistant", content: "Paris 21°C, Köln sunny." },
    ],
  },
  { name: "tool_call_after_text", messages: [{ role: "user", content: "x" }, { role: "assistant", content: "Let me check.", tool_calls: [{ name: "lookup", arguments: { q: "a\tb\u0001", n: [1, -2, true, null, { nested: "ü" }] } }] }, { role: "tool", content: "r" }], add_generation_prompt: true },
  { name: "tool_first", messages: [{ role: "tool", content: "orphan result" }, { role: "user", content: "go" }] },
  { name: "unicode_content", messages: [{ role: "user", content: "你好 😀 e\u0301" }, { role: "assistant", content: "\n\n世界" }] },
];
for (const chat of chats) {
  const vars = { messages: chat.messages, tools: chat.tools, add_generation_prompt: !!chat.add_generation_prompt, bos_token: "<|im_start|>", eos_token: "<|im_end|>" };
  if (chat.open_thinking) vars.open_thinking = true;
  const text = minimindTemplate.render(vars);
  if (chronosTemplate) {
    const ours = chronosTemplate.render(vars);
    if (ours !== text) throw new Error(`chat '${chat.name}': the Chronos Jinja template renders\n${JSON.stringify(ours)}\nbut MiniMind's renders\n${JSON.stringify(text)}`);
  }
  out.chats.push({ ...chat, text, ids: await encode(base, text) });
}

// One entry per line: small, and a diff shows which case changed.
const lines = Object.entries(out).map(([key, value]) =>
  Array.isArray(value) ? `"${key}": [\n${value.map((v) => JSON.stringify(v)).join(",\n")}\n]` : `"${key}": ${JSON.stringify(value)}`);
fs.writeFileSync(outPath, "{\n" + lines.join(",\n") + "\n}\n");
console.log(`${outPath}: ${out.encodings.length} encodings, ${out.variants.length} variants, ${out.decodes.length} decodes, ${out.chats.length} chats` +
  (chronosTemplate ? "; the Chronos Jinja template matched MiniMind's on every chat" : ""));
