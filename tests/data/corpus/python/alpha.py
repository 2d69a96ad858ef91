"""Small helpers for counting words: a fixture of tools/build_corpus.py's tests."""
import collections
import re

WORD = re.compile(r"[A-Za-z']+")


def words(text):
    """The words of a text, lower-cased, in order."""
    return [word.lower() for word in WORD.findall(text)]


def most_common(text, count=3):
    """The `count` most frequent words of a text with their frequencies."""
    return collections.Counter(words(text)).most_common(count)


def longest_line(lines):
    """The longest of some lines, the first one on a tie."""
    best = ""
    for line in lines:
        if len(line) > len(best):
            best = line
    return best


if __name__ == "__main__":
    print(most_common("the cat and the hat and the bat"))
