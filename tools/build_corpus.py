#!/usr/bin/env python3
"""Builds Chronos's multi-domain corpus from Debian packages, so that experts can specialise by domain.

Domains, each with its default source (override with --source DOMAIN=PATH, a file or a folder):
  en      English fortunes      /usr/share/games/fortunes (package fortunes; not fortunes-zh's files)
  zh      Chinese fortunes      /usr/share/games/fortunes/{chinese,song100,tang300} (fortunes-zh)
  de, es, it, ru                /usr/share/games/fortunes/<lang>/ (fortunes-de, -es, -it, -ru)
  python  Python source         the standard library of /usr/bin/python3, *.py at its top level
  man     manual pages          /usr/share/man/man1 .. man8 (manpages, man-db), rendered with groff
A folder contributes its regular files at depth 1 (symlinks are skipped: on Debian they duplicate
files of other packages or languages). Fortunes are split at "%" lines and cleaned (double-encoded
UTF-8 repaired, colour escapes and backspace overstrikes resolved, control characters dropped);
files that are not UTF-8 are read in the domain's legacy encoding (cp1252, koi8-r, gb18030).
Python files are cut into chunks of whole top-level statements, man pages (at most --max-man-pages,
chosen by hash, one page of each command family such as git-* before a second of any) into chunks
of whole paragraphs, each chunk at most --max-chars characters; longer fortunes are skipped.

Each domain keeps at most --max-records-per-domain distinct records and --max-chars-per-domain
characters (man pages and Python chunks are ten times as long as fortunes), chosen by a hash of the
text. A record is held out when sha1(domain NUL text) falls below --heldout-fraction, and enough
more are held out for --prompts-per-domain prompts of at least 60 characters. Everything depends on
the names and contents of the input files, never on listing order: the same inputs always give
byte-identical outputs.

Outputs (JSONL, one object a line, each with its "domain"):
  --out             {"text"} training records: pretraining and tokenizer corpus, domains mixed
  --sft             {"conversations": [user, assistant]}: a question in the domain's language,
                    answered with a training record
  --heldout         {"text"} held-out records, never in --out or --sft
  --prompts         {"text"} openings (first 200 characters) of held-out records, the same number
                    per domain, domains interleaved (chronos-bench offload)
  --intent-prompts  {"text"} openings of training records, balanced and interleaved the same way
                    (chronos-train intent)
  --summary         JSON: records and characters per domain and split

Usage: build_corpus.py --out corpus.jsonl [--sft sft.jsonl] [--heldout heldout.jsonl]
           [--prompts bench.jsonl] [--intent-prompts intent.jsonl] [--summary summary.json]
           [--domains en,zh,de,es,it,ru,python,man] [--source DOMAIN=PATH]...
           [--max-chars N] [--max-records-per-domain N] [--max-chars-per-domain N]
           [--max-man-pages N] [--heldout-fraction F]
           [--prompts-per-domain N] [--intent-prompts-per-domain N] [--jobs N]
"""
import argparse
import concurrent.futures
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

PROG = "build_corpus"
FORTUNES = "/usr/share/games/fortunes"
ZH_FILES = ("chinese", "song100", "tang300")
MIN_PROMPT_CHARS = 60
PROMPT_CHARS = 200


@dataclass(frozen=True)
class Domain:
    kind: str  # how its files are parsed: "fortune", "python" or "man"
    package: str  # the Debian package that installs its default source
    paths: tuple  # the default source (files or folders); the python domain's is looked up
    question: str  # the user turn of its SFT records, with {topic}
    legacy_encoding: str  # for files that are not UTF-8
    skip: tuple = ()  # file names never read for this domain


DOMAINS = {
    "en": Domain("fortune", "fortunes", (FORTUNES,), "Tell me a saying about {topic}.", "cp1252", ZH_FILES),
    "zh": Domain("fortune", "fortunes-zh", tuple(f"{FORTUNES}/{name}" for name in ZH_FILES),
                 "请给我讲一段关于{topic}的话。", "gb18030"),
    "de": Domain("fortune", "fortunes-de", (f"{FORTUNES}/de",), "Erzähl mir einen Spruch über {topic}.", "cp1252"),
    "es": Domain("fortune", "fortunes-es", (f"{FORTUNES}/es",), "Dime un dicho sobre {topic}.", "cp1252"),
    "it": Domain("fortune", "fortunes-it", (f"{FORTUNES}/it",), "Dimmi un detto su {topic}.", "cp1252"),
    "ru": Domain("fortune", "fortunes-ru", (f"{FORTUNES}/ru",), "Расскажи мне изречение на тему «{topic}».", "koi8_r"),
    "python": Domain("python", "python3", (), "Show me Python code from the {topic} module.", "latin-1"),
    "man": Domain("man", "manpages", tuple(f"/usr/share/man/man{s}" for s in range(1, 9)),
                  "What does the manual say about {topic}?", "latin-1"),
}

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]?")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
C1 = re.compile(r"[\x80-\x9f]")
MOJIBAKE = re.compile(r"[\u00c2-\u00f4][\u0080-\u00bf]+")  # a UTF-8 lead byte and continuation bytes, as latin-1
LINE = re.compile(r"[^\n]*\S[^\n]*")
BLOCK = re.compile(r"[^\n]*\S[^\n]*(?:\n[^\n]*\S[^\n]*)*")  # non-blank lines in a row
MAN_FILE = re.compile(r"\.[1-9][a-z]*(\.gz)?$")
# groff: man or mdoc macros, tables, UTF-8 in and out, no bold/underline/overstrike or colour, 78
# columns; before the page, ragged right (no padding spaces) and no hyphenation, even where the
# macros ask for it (mdoc does).
GROFF = ["groff", "-mandoc", "-t", "-Kutf-8", "-Tutf8", "-P-cbou", "-rLL=78n", "-rLT=78n"]
MAN_PROLOGUE = ".ad l\n.nh\n.rm hy\n"


@dataclass(frozen=True)
class Record:
    domain: str
    text: str
    topic: str  # what the SFT question asks about: fortune file, module, man page


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        fail(message)


def fail(message):
    """Exits with one line on stderr."""
    sys.exit(f"{PROG}: {message}")


def progress(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def stable_hash(*parts):
    """A number in [0, 1) from the sha1 of the parts joined by NUL."""
    return int(hashlib.sha1("\0".join(parts).encode("utf-8")).hexdigest()[:15], 16) / 16**15


def split_key(record):
    return stable_hash(record.domain, record.text)


# ----- reading files


def read_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    if not path.endswith(".gz"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as error:
        fail(f"{path}: not a gzip file ({error})")


def decode(data, legacy_encoding):
    """UTF-8 when the bytes are valid UTF-8, else the legacy encoding; line ends normalised."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode(legacy_encoding, errors="replace")
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def folder_files(folder, kind, skip):
    """The regular files (not symlinks) at depth 1 of a folder that a domain of this kind reads."""
    names = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.islink(path) or not os.path.isfile(path) or name in skip:
            continue
        if kind == "fortune" and name.endswith((".dat", ".u8")):
            continue
        if (kind == "python" and not name.endswith(".py")) or (kind == "man" and not MAN_FILE.search(name)):
            continue
        names.append(path)
    return names


def source_files(domain, paths):
    """The files of a domain's source paths, sorted and without duplicates."""
    spec = DOMAINS[domain]
    files = set()
    for path in paths:
        if os.path.isdir(path):
            files.update(folder_files(path, spec.kind, spec.skip))
        elif os.path.isfile(path):
            files.add(path)
    return sorted(files)


def system_stdlib():
    """The standard-library folder of Debian's /usr/bin/python3, or None without one."""
    try:
        result = subprocess.run(["/usr/bin/python3", "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def default_paths(domain):
    if domain == "python":
        stdlib = system_stdlib()
        return (stdlib,) if stdlib else ()
    return DOMAINS[domain].paths


# ----- fortunes


def fortune_entries(text):
    """The entries of a fortune file: the texts between lines holding only "%"."""
    entry = []
    for line in text.split("\n"):
        if line == "%":
            yield "\n".join(entry)
            entry = []
        else:
            entry.append(line)
    yield "\n".join(entry)


def resolve_overstrike(line):
    """What a printer shows for a line with backspaces: a later character replaces an earlier one,
    except that an underscore (underlining) never replaces a character."""
    cells, at = [], 0
    for char in line:
        if char == "\b":
            at = max(at - 1, 0)
            continue
        if at == len(cells):
            cells.append(char)
        elif char != "_":
            cells[at] = char
        at += 1
    return "".join(cells)


def undo_latin1(match):
    """The characters whose UTF-8 bytes were read as latin-1 into match, or match if there are none."""
    try:
        return match.group().encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return match.group()


def repair_mojibake(text):
    """Undoes the wrong conversions of a few files: UTF-8 read as latin-1, once or twice ("CÃ©line",
    "donÃ¢Â\x80Â\x99t"), then reads any C1 control character left (never meant as text) as cp1252."""
    fixed = MOJIBAKE.sub(undo_latin1, text)
    while fixed != text:
        text, fixed = fixed, MOJIBAKE.sub(undo_latin1, fixed)
    return C1.sub(lambda m: m.group().encode("latin-1").decode("cp1252", errors="ignore"), text)


def clean_fortune(raw):
    """The text of a fortune entry: mojibake repaired, colour escapes removed, overstrikes resolved,
    control characters and trailing spaces dropped."""
    text = ANSI.sub("", repair_mojibake(raw))
    if "\b" in text:
        text = "\n".join(resolve_overstrike(line) for line in text.split("\n"))
    return "\n".join(line.rstrip() for line in CONTROL.sub("", text).split("\n")).strip()


def fortune_topic(path):
    return os.path.basename(path).removesuffix(".fortunes")


def read_fortunes(domain, path, max_chars):
    text = decode(read_bytes(path), DOMAINS[domain].legacy_encoding)
    topic = fortune_topic(path)
    for raw in fortune_entries(text):
        entry = clean_fortune(raw)
        if entry and len(entry) <= max_chars:
            yield Record(domain, entry, topic)


# ----- chunking (Python source, man pages): a chunk is a slice of the text, spacing kept


def paragraphs(text, start, end):
    """The spans of the blank-line separated blocks of text[start:end]."""
    return [m.span() for m in BLOCK.finditer(text, start, end)]


def lines(text, start, end):
    """The spans of the non-blank lines of text[start:end]."""
    return [m.span() for m in LINE.finditer(text, start, end)]


def top_level_statements(text, start, end):
    """Paragraph spans of Python source, each indented one joined to the one before it: whole
    top-level statements (a def or class with its body)."""
    spans = []
    for first, last in paragraphs(text, start, end):
        if spans and text[first] in " \t":
            spans[-1] = (spans[-1][0], last)
        else:
            spans.append((first, last))
    return spans


def pack(spans, max_chars):
    """Consecutive spans joined greedily into spans of at most max_chars characters."""
    packed = []
    for first, last in spans:
        if packed and last - packed[-1][0] <= max_chars:
            packed[-1] = (packed[-1][0], last)
        else:
            packed.append((first, last))
    return packed


def fit(text, start, end, max_chars, levels):
    """Spans of at most max_chars characters in text[start:end]: whole pieces of the first level,
    packed; a piece too long is cut at the next level; one that no level cuts small enough is dropped
    (packing never spans it: it is too long)."""
    if end - start <= max_chars:
        return [(start, end)]
    if not levels:
        return []
    pieces = [span for first, last in levels[0](text, start, end)
              for span in fit(text, first, last, max_chars, levels[1:])]
    return pack(pieces, max_chars)


def chunks(text, max_chars, levels):
    spans = fit(text, 0, len(text), max_chars, levels)
    return [chunk for chunk in (text[first:last].strip("\n").rstrip() for first, last in spans) if chunk]


PYTHON_LEVELS = [top_level_statements, paragraphs, lines]
MAN_LEVELS = [paragraphs, lines]


def read_python(path, max_chars):
    source = CONTROL.sub("", decode(read_bytes(path), DOMAINS["python"].legacy_encoding))
    module = os.path.basename(path).removesuffix(".py")
    for chunk in chunks(source, max_chars, PYTHON_LEVELS):
        yield Record("python", chunk, module)


# ----- man pages


def man_page_name(path):
    """ls.1.gz -> ls(1)"""
    stem = os.path.basename(path).removesuffix(".gz")
    name, _, section = stem.rpartition(".")
    return f"{name}({section})"


def strip_page_frame(rendered):
    """The body of a rendered page: without its header and footer lines and the blank lines around."""
    body = rendered.strip("\n").split("\n")[1:-1]
    return "\n".join(body).strip("\n")


def render_man_page(path):
    """The plain UTF-8 text of a man page source (possibly gzipped); "" for a .so link or a failure."""
    source = decode(read_bytes(path), DOMAINS["man"].legacy_encoding)
    if source.lstrip().startswith(".so "):
        return ""
    try:
        result = subprocess.run(GROFF, input=(MAN_PROLOGUE + source).encode("utf-8"), capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return ""
    if result.returncode != 0:
        return ""
    return CONTROL.sub("", strip_page_frame(result.stdout.decode("utf-8", errors="replace")))


def man_family(path):
    """The command a page belongs to: git-log.1.gz -> git, gcloud_compute.1.gz -> gcloud."""
    return re.split(r"[-_.]", os.path.basename(path), maxsplit=1)[0]


def choose_man_pages(files, max_pages):
    """At most max_pages of the files, in name order: one page of every family (by a hash of its
    name) before a second page of any, so that neither listing order nor a family of thousands of
    pages decides what is read."""
    by_family = {}
    for key, path in sorted((stable_hash("man", os.path.basename(path)), path) for path in files):
        by_family.setdefault(man_family(path), []).append((key, path))
    ranked = sorted((rank, key, path) for pages in by_family.values() for rank, (key, path) in enumerate(pages))
    return sorted(path for _, _, path in ranked[:max_pages])


def read_man_pages(files, max_chars, max_pages, jobs):
    chosen = choose_man_pages(files, max_pages)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for path, text in zip(chosen, pool.map(render_man_page, chosen)):
            for chunk in chunks(text, max_chars, MAN_LEVELS):
                yield Record("man", chunk, man_page_name(path))


# ----- the corpus


def read_domain(domain, files, args):
    kind = DOMAINS[domain].kind
    if kind == "man":
        return list(read_man_pages(files, args.max_chars, args.max_man_pages, args.jobs))
    if kind == "python":
        return [record for path in files for record in read_python(path, args.max_chars)]
    return [record for path in files for record in read_fortunes(domain, path, args.max_chars)]


def distinct(records, seen):
    """The records whose text is not in `seen` (texts of earlier records and domains), first one kept."""
    kept = []
    for record in records:
        if record.text not in seen:
            seen.add(record.text)
            kept.append(record)
    return kept


def cap(records, max_records, max_chars):
    """The first records in the order of a hash of their text: at most max_records of them and
    max_chars characters in all."""
    kept, total = [], 0
    for record in sorted(records, key=lambda r: (stable_hash("keep", r.domain, r.text), r.text)):
        if len(kept) == max_records or total + len(record.text) > max_chars:
            break
        kept.append(record)
        total += len(record.text)
    return kept


def split(domain, records, fraction, prompts_needed):
    """(training, held-out): held out are the records whose hash is below the fraction, and the next
    ones by hash that can open a prompt until prompts_needed of them are held out."""
    ordered = sorted(records, key=lambda r: (split_key(r), r.text))
    heldout = [r for r in ordered if split_key(r) < fraction]
    openers = sum(len(r.text) >= MIN_PROMPT_CHARS for r in heldout)
    for record in ordered[len(heldout):]:
        if openers >= prompts_needed:
            break
        if len(record.text) >= MIN_PROMPT_CHARS:
            heldout.append(record)
            openers += 1
    if openers < prompts_needed:
        fail(f"domain {domain}: only {openers} records of at least {MIN_PROMPT_CHARS} characters, "
             f"--prompts-per-domain needs {prompts_needed}")
    held = set(heldout)
    training = [r for r in ordered if r not in held]
    if not training:
        fail(f"domain {domain}: no training records left after holding out {len(heldout)}")
    return training, heldout


def openings(records, count):
    """The openings of the first `count` records long enough to open a prompt."""
    long_enough = [r for r in records if len(r.text) >= MIN_PROMPT_CHARS]
    return [Record(r.domain, r.text[:PROMPT_CHARS].rstrip(), r.topic) for r in long_enough[:count]]


def interleave(lists):
    """One from each list in turn: a, b, c, a, b, c, ..."""
    out = []
    for i in range(max((len(items) for items in lists), default=0)):
        out.extend(items[i] for items in lists if i < len(items))
    return out


def mixed(records):
    """All records in a stable order that mixes domains: by hash."""
    return sorted(records, key=lambda r: (split_key(r), r.domain, r.text))


def chars(records):
    return sum(len(r.text) for r in records)


# ----- writing


def write_jsonl(path, objects):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for obj in objects:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")


def text_object(record):
    return {"text": record.text, "domain": record.domain}


def conversation_object(record):
    question = DOMAINS[record.domain].question.format(topic=record.topic)
    return {"conversations": [{"role": "user", "content": question}, {"role": "assistant", "content": record.text}],
            "domain": record.domain}


def summary_object(domains, training, heldout, prompts, intent_prompts):
    def figures(records):
        return {"records": len(records), "chars": chars(records)}

    return {"domains": {d: {"train": figures(training[d]), "heldout": figures(heldout[d]),
                            "prompts": len(prompts[d]), "intent_prompts": len(intent_prompts[d])} for d in domains}}


# ----- command line


def domain_list(value):
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in DOMAINS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown domain '{unknown[0]}' (known: {', '.join(DOMAINS)})")
    if not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"'{value}' must name each domain once")
    return names


def source_flag(value):
    domain, sep, path = value.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"'{value}' is not DOMAIN=PATH")
    if domain not in DOMAINS:
        raise argparse.ArgumentTypeError(f"'{value}': unknown domain '{domain}' (known: {', '.join(DOMAINS)})")
    if not os.path.exists(path):
        raise argparse.ArgumentTypeError(f"'{value}': {path}: no such file or folder")
    return domain, path


def fraction(value):
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1) (got '{value}')")
    return number


def at_least(minimum):
    def check(value):
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum} (got '{value}')")
        return number

    return check


def parse_args(argv):
    parser = ArgumentParser(prog="build_corpus.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="training records (pretraining/tokenizer JSONL) to write")
    parser.add_argument("--sft", help="also write conversations built from the training records here")
    parser.add_argument("--heldout", help="also write the held-out records here")
    parser.add_argument("--prompts", help="also write benchmark prompts (held-out openings) here")
    parser.add_argument("--intent-prompts", help="also write intent-training prompts (training openings) here")
    parser.add_argument("--summary", help="also write records and characters per domain and split here (JSON)")
    parser.add_argument("--domains", type=domain_list, default=list(DOMAINS), help="comma-separated (default: all)")
    parser.add_argument("--source", type=source_flag, action="append", default=[], metavar="DOMAIN=PATH",
                        help="read DOMAIN from PATH (a file or folder) instead of its default; repeatable")
    parser.add_argument("--max-chars", type=at_least(1), default=2000, help="longest record (characters)")
    parser.add_argument("--max-records-per-domain", type=at_least(1), default=6000)
    parser.add_argument("--max-chars-per-domain", type=at_least(1), default=1_500_000,
                        help="characters of a domain's records at most")
    parser.add_argument("--max-man-pages", type=at_least(1), default=800, help="man pages rendered at most")
    parser.add_argument("--heldout-fraction", type=fraction, default=0.02)
    parser.add_argument("--prompts-per-domain", type=at_least(0), default=6)
    parser.add_argument("--intent-prompts-per-domain", type=at_least(0), default=64)
    parser.add_argument("--jobs", type=at_least(1), default=os.cpu_count() or 1, help="groff processes at once")
    args = parser.parse_args(argv)
    for flag in ("out", "sft", "heldout", "prompts", "intent_prompts", "summary"):
        path = getattr(args, flag)
        if path and not os.path.isdir(os.path.dirname(path) or "."):
            fail(f"--{flag.replace('_', '-')} {path}: the folder {os.path.dirname(path)} does not exist")
    for domain, path in args.source:
        if domain not in args.domains:
            fail(f"--source {domain}={path}: domain {domain} is not in --domains")
    return args


def resolve_sources(args):
    """{domain: its files}; one error line naming the packages to install when defaults are missing."""
    given = {}
    for domain, path in args.source:
        given.setdefault(domain, []).append(path)
    files, missing = {}, []
    for domain in args.domains:
        files[domain] = source_files(domain, given.get(domain) or default_paths(domain))
        if not files[domain]:
            if domain in given:
                fail(f"domain {domain}: no {DOMAINS[domain].kind} files in {', '.join(given[domain])}")
            missing.append(domain)
    if missing:
        packages = sorted({DOMAINS[d].package for d in missing})
        fail(f"no default source for {', '.join(missing)}: install with "
             f"'apt-get install {' '.join(packages)}' or give --source DOMAIN=PATH")
    if "man" in args.domains and shutil.which("groff") is None:
        fail("the man domain needs groff: install it with 'apt-get install groff-base'")
    return files


def build(args, files):
    """{domain: training records}, {domain: held-out records}, in the fixed order of DOMAINS: a text
    found in two domains stays in the first."""
    seen, training, heldout = set(), {}, {}
    for domain in (d for d in DOMAINS if d in args.domains):
        start = time.monotonic()
        records = distinct(read_domain(domain, files[domain], args), seen)
        kept = cap(records, args.max_records_per_domain, args.max_chars_per_domain)
        training[domain], heldout[domain] = split(domain, kept, args.heldout_fraction, args.prompts_per_domain)
        progress(f"{domain}: {len(records)} records ({chars(records)} chars) from {len(files[domain])} files, "
                 f"kept {len(kept)} ({chars(kept)} chars): {len(training[domain])} training "
                 f"({chars(training[domain])} chars), {len(heldout[domain])} held out ({chars(heldout[domain])} chars) "
                 f"in {time.monotonic() - start:.1f} s")
    return training, heldout


def write_outputs(args, training, heldout):
    domains = list(training)
    prompts = {d: openings(heldout[d], args.prompts_per_domain) for d in domains}
    intent_pool = {d: openings(training[d], args.intent_prompts_per_domain) for d in domains}
    balanced = min(len(pool) for pool in intent_pool.values())
    intent_prompts = {d: intent_pool[d][:balanced] for d in domains}
    all_training = mixed(r for d in domains for r in training[d])
    write_jsonl(args.out, map(text_object, all_training))
    if args.sft:
        write_jsonl(args.sft, map(conversation_object, all_training))
    if args.heldout:
        write_jsonl(args.heldout, map(text_object, mixed(r for d in domains for r in heldout[d])))
    if args.prompts:
        write_jsonl(args.prompts, map(text_object, interleave([prompts[d] for d in domains])))
    if args.intent_prompts:
        write_jsonl(args.intent_prompts, map(text_object, interleave([intent_prompts[d] for d in domains])))
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            json.dump(summary_object(domains, training, heldout, prompts, intent_prompts), f, ensure_ascii=False, indent=1)
            f.write("\n")
    print(f"{PROG}: {len(all_training)} training and {sum(map(len, heldout.values()))} held-out records "
          f"in {len(domains)} domains ({', '.join(domains)}) -> {args.out}")


def main(argv=None):
    args = parse_args(argv)
    files = resolve_sources(args)
    try:
        training, heldout = build(args, files)
        write_outputs(args, training, heldout)
    except OSError as error:  # an unreadable input, an unwritable output
        fail(f"{error.filename}: {error.strerror}")


if __name__ == "__main__":
    main()
