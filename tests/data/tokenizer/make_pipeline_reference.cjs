// Regenerates pipeline_reference.json: what HF tokenizers (the npm package, the Rust library
// transformers uses) gives for the two small pipeline fixtures beside this script (a Llama-style
// SentencePiece layout and a Qwen-style NFC + Split + ByteLevel layout). Not run by the build.
// Usage, in a scratch folder: npm install tokenizers@0.23.2, then
//   NODE_PATH=node_modules node tests/data/tokenizer/make_pipeline_reference.cjs tests/data/tokenizer
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("tokenizers");

const dir = process.argv[2];
const cases = {
  "pipeline_sentencepiece.json": ["hello world", "hello", " hello", "héllo wörld", "hi😀", "", "a  b", "<s>hello</s>", "hello\nworld", "wörld\u00e9"],
  "pipeline_bytelevel.json": ["the 12345 e\u0301t\u00e9", "x <tag> y", "a cat, category cat", "  the  the", "\u00e9\u00e9", "<s>the<s>",
                              "tag<tag>tag", "1234567", "e\u0301\u0301", "A\u030a"],
};
(async () => {
  const out = {};
  for (const [file, texts] of Object.entries(cases)) {
    const tokenizer = Tokenizer.fromFile(path.join(dir, file));
    out[file] = [];
    for (const text of texts) {
      const plain = await tokenizer.encode(text, null, { addSpecialTokens: false });
      const special = await tokenizer.encode(text, null, { addSpecialTokens: true });
      out[file].push({
        text,
        ids: plain.getIds(),
        offsets: plain.getOffsets(),
        ids_special: special.getIds(),
        offsets_special: special.getOffsets(),
        decoded: await tokenizer.decode(special.getIds(), false),
        decoded_skip: await tokenizer.decode(special.getIds(), true),
      });
    }
  }
  fs.writeFileSync(path.join(dir, "pipeline_reference.json"), JSON.stringify(out, null, 1) + "\n");
})();
