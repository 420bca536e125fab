"""Longest-match phrase lookup over the note's words, keeping character offsets."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['\u2019]s)?")
MAX_PHRASE_WORDS = 8


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


def tokenize(text: str) -> list[Token]:
    return [
        Token(m.group(0), m.group(0).lower().replace("\u2019", "'"), m.start(), m.end())
        for m in _TOKEN.finditer(text)
    ]


def find_phrases(
    text: str,
    tokens: list[Token],
    lexicons: tuple[Mapping[str, str], ...],
    *,
    abbreviation_max_len: int = 3,
) -> Iterator[PhraseMatch]:
    """Left to right, the longest phrase found in any lexicon (earlier lexicons win on equal length).

    A single-word key of at most `abbreviation_max_len` letters ("htn", "cad") matches only when
    written with a capital letter in the note, so ordinary words are not read as abbreviations."""
    index = 0
    count = len(tokens)
    while index < count:
        found: PhraseMatch | None = None
        for length in range(min(MAX_PHRASE_WORDS, count - index), 0, -1):
            window = tokens[index : index + length]
            # a phrase never spans a line break followed by a list marker or a new sentence
            if length > 1 and _broken(text, window):
                continue
            key = " ".join(token.norm for token in window)
            for lexicon in lexicons:
                value = lexicon.get(key)
                if value is None:
                    continue
                if length == 1 and len(key) <= abbreviation_max_len and window[0].text.islower():
                    continue
                found = PhraseMatch(window[0].start, window[-1].end, key, value)
                break
            if found:
                break
        if found:
            yield found
            while index < count and tokens[index].start < found.end:
                index += 1
        else:
            index += 1


def _broken(text: str, window: list[Token]) -> bool:
    for left, right in itertools.pairwise(window):
        gap = text[left.end : right.start]
        if any(mark in gap for mark in ".;:|[]") or gap.count("\n") > 1 or len(gap) > 4:
            return True
    return False
