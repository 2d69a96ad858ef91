#!/usr/bin/env python3
"""Turns fortune(6) data files (Debian's `fortunes` and `fortunes-zh`) into JSONL for Chronos.

Writes one {"text": ...} record per fortune (pretraining and tokenizer corpus) and, with --sft,
one {"conversations": [...]} record per fortune: the user asks for a saying on the file's topic and
the assistant answers with the fortune. Colour escape sequences are removed; empty entries skipped.
--prompts and --intent-prompts write {"text": opening} prompts (the first 200 characters) from two
disjoint samples of the fortunes of at least 60 characters: every 37th (at most 24, for chronos-bench
offload) and every 37th shifted by 5 (at most 400, for chronos-train intent).

Usage: fortunes_to_jsonl.py --out corpus.jsonl [--sft sft.jsonl] [--prompts bench.jsonl]
                            [--intent-prompts intent.jsonl] [--max-chars N] FILE...
"""
import argparse
import json
import os
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read_fortunes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        entry = []
        for line in f:
            if line.rstrip("\r\n") == "%":
                yield "".join(entry)
                entry = []
            else:
                entry.append(line)
        yield "".join(entry)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="pretraining/tokenizer JSONL to write")
    parser.add_argument("--sft", help="also write conversations JSONL here")
    parser.add_argument("--prompts", help="also write benchmark prompts here")
    parser.add_argument("--intent-prompts", help="also write intent-training prompts here (disjoint from --prompts)")
    parser.add_argument("--max-chars", type=int, default=2000, help="skip fortunes longer than this")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    texts = 0
    samples = 0  # fortunes long enough to open a prompt
    prompt_files = [(open(args.prompts or os.devnull, "w", encoding="utf-8"), 0, 24),
                    (open(args.intent_prompts or os.devnull, "w", encoding="utf-8"), 5, 400)]
    written = [0, 0]
    with open(args.out, "w", encoding="utf-8") as out, open(args.sft or os.devnull, "w", encoding="utf-8") as sft:
        for path in args.files:
            if not os.path.isfile(path):
                sys.exit(f"fortunes_to_jsonl: {path}: no such file")
            topic = os.path.basename(path)
            for raw in read_fortunes(path):
                text = ANSI.sub("", raw).strip()
                if not text or len(text) > args.max_chars:
                    continue
                out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
                sft.write(json.dumps({"conversations": [
                    {"role": "user", "content": f"Tell me a saying about {topic}."},
                    {"role": "assistant", "content": text}]}, ensure_ascii=False) + "\n")
                texts += 1
                if len(text) < 60:
                    continue
                samples += 1
                for i, (file, offset, limit) in enumerate(prompt_files):
                    if samples % 37 == offset and written[i] < limit:
                        file.write(json.dumps({"text": text[:200]}, ensure_ascii=False) + "\n")
                        written[i] += 1
    for file, _, _ in prompt_files:
        file.close()
    if texts == 0:
        sys.exit("fortunes_to_jsonl: no fortunes found in the given files")
    print(f"fortunes_to_jsonl: {texts} fortunes from {len(args.files)} files -> {args.out}")


if __name__ == "__main__":
    main()
