// HF tokenizers' single-thread encode speed (MB/s) on the records of a JSONL file, for
// tools/bench_tokenizer_vs_hf.sh: encodeBatch over all records (run with TOKENIZERS_PARALLELISM=false
// and RAYON_NUM_THREADS=1, so one thread), warm-up passes, then the median of the timed repeats.
// Usage: node bench_tokenizer_hf.cjs TOKENIZER.json TEXTS.jsonl WARMUP REPEAT
const fs = require("fs");
const { Tokenizer } = require("tokenizers");

const [file, textFile, warmup, repeat] = process.argv.slice(2);
(async () => {
  const tokenizer = Tokenizer.fromFile(file);
  const texts = fs.readFileSync(textFile, "utf8").split("\n").filter((l) => l.trim()).map((l) => {
    const v = JSON.parse(l);
    return typeof v === "string" ? v : v.text;
  });
  const megabytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0) / 1e6;
  const pass = () => tokenizer.encodeBatch(texts, { addSpecialTokens: false });
  for (let i = 0; i < Number(warmup); i++) await pass();
  const seconds = [];
  for (let i = 0; i < Number(repeat); i++) {
    const start = process.hrtime.bigint();
    await pass();
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  seconds.sort((a, b) => a - b);
  console.log((megabytes / seconds[Math.floor(seconds.length / 2)]).toFixed(4));
})();
