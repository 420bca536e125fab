"""Longest-match phrase lookup over the note's words, keeping character offsets."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['\u2019]s)?")
_BREAKING_GAP = re.compile(r"[.;:|\[\]]|\n[ \t]*\n")
MAX_GAP_CHARS = 4


@dataclass(frozen=True)
class Token:
    text: str  # as written
    norm: str  # lower case
    start: int
    end: int


@dataclass(frozen=True)
class PhraseMatch:
    start: int
    end: int
    key: str  # the normalized phrase that matched
    value: str  # what the lexicon maps it to


class PhraseIndex:
    """Phrases (normalized, space-separated words) -> values, with every word prefix of every phrase so a
    scan stops as soon as no phrase can continue. Earlier lexicons win on equal phrases."""

    def __init__(self, *lexicons: Mapping[str, str]) -> None:
        self.phrases: dict[str, str] = {}
        for lexicon in lexicons:
            for key, value in lexicon.items():
                self.phrases.setdefault(key, value)
        self.prefixes: set[str] = set()
        for key in self.phrases:
            words = key.split()
            for length in range(1, len(words)):
                self.prefixes.add(" ".join(words[:length]))


def tokenize(text: str) -> list[Token]:
    return [
        Token(m.group(0), american(m.group(0).lower()), m.start(), m.end()) for m in _TOKEN.finditer(text)
    ]


def american(word: str) -> str:
    """British spellings as the tables spell them: haemoglobin, anaemia, oedema, paediatric."""
    word = word.replace("\u2019", "'")
    if "ae" in word:
        word = word.replace("aem", "em").replace("paed", "ped").replace("haem", "hem")
    if word.startswith("oe"):
        word = "e" + word[2:]
    return word


def find_phrases(
    text: str, tokens: list[Token], phrase_index: PhraseIndex, *, abbreviation_max_len: int = 3
) -> Iterator[PhraseMatch]:
    """Left to right, the longest phrase of the index. A phrase never spans a sentence end, a colon or a
    table cell border. A single-word phrase of at most `abbreviation_max_len` letters ("htn", "cad")
    matches only when written with a capital letter, so ordinary words are not read as abbreviations."""
    phrases, prefixes = phrase_index.phrases, phrase_index.prefixes
    count = len(tokens)
    breaks = [_broken(text[tokens[i].end : tokens[i + 1].start]) for i in range(count - 1)]
    position = 0
    while position < count:
        found: PhraseMatch | None = None
        key = ""
        for last in range(position, count):
            if last > position and breaks[last - 1]:
                break
            key = tokens[last].norm if last == position else f"{key} {tokens[last].norm}"
            value = phrases.get(key)
            abbreviation = (
                last == position and len(key) <= abbreviation_max_len and tokens[last].text.islower()
            )
            if value is not None and not abbreviation:
                found = PhraseMatch(tokens[position].start, tokens[last].end, key, value)
            if key not in prefixes:
                break
        if found:
            yield found
            while position < count and tokens[position].start < found.end:
                position += 1
        else:
            position += 1


def _broken(gap: str) -> bool:
    return len(gap) > MAX_GAP_CHARS or _BREAKING_GAP.search(gap) is not None
