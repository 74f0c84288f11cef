"""Okapi BM25 over tool names and descriptions, single words and adjacent word pairs, in memory, pure numpy.

Why not Postgres full-text search on the hot path: natural-language queries need OR semantics, and ranking
thousands of OR matches with ts_rank_cd is far slower than these postings (docs/decisions.md). Names are
split on camelCase, snake_case and digits, so `calculateNetIncome` matches "net income".
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

K1 = 1.2
B = 0.75
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by can do for from get i in is it me my of on or please the to this with you "
    "your what which how want need would like".split()
)


def words(text: str) -> list[str]:
    """Lower-cased words of `text`, camelCase and snake_case split, stop words and one-letter words dropped."""
    spaced = _CAMEL.sub(" ", text).replace("_", " ").lower()
    return [_stem(w) for w in _WORD.findall(spaced) if len(w) > 1 and w not in _STOP]


def name_coverage(query_words: frozenset[str], name: frozenset[str]) -> float:
    """The share of a tool's name words (see `words`) that the query contains: 1 when it spells the name out.

    BM25 spreads its weight over the whole description; a query naming the tool (``getPostmodernTheory`` for
    "information about postmodern theory") says more than words shared with a description.
    """
    return len(name & query_words) / len(name) if name else 0.0


def _stem(word: str) -> str:
    """A light plural/suffix fold (bookings -> booking, queries -> query), enough for tool vocabularies."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


class Bm25Index:
    """An immutable BM25 index over ``(tool_id, text)`` pairs; build a new one when the tools change."""

    def __init__(self, documents: Iterable[tuple[str, str]]) -> None:
        docs = list(documents)
        self.ids: tuple[str, ...] = tuple(d for d, _ in docs)
        said = [words(text) for _, text in docs]
        self._postings = _postings([Counter(w) for w in said])
        self._pairs = _postings([Counter(_pairs(w)) for w in said])

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, limit: int, *, phrases: float = 0.0) -> list[tuple[str, float]]:
        """The `limit` best tools for `query` with their BM25 scores (only tools sharing a word).

        With `phrases` > 0 each pair of adjacent query words that the tool's text also has side by side adds
        `phrases` x its own BM25 score over such pairs (the sequential dependence model of Metzler and Croft,
        2005): "gender and sexuality support" then tells `getGenderAndSexualitySupport` from `getGenderSupport`,
        which share every single word with it.
        """
        said = words(query)
        scores = _scored(self._postings, set(said), len(self.ids))
        if phrases > 0:
            scores += phrases * _scored(self._pairs, set(_pairs(said)), len(self.ids))
        hits = np.flatnonzero(scores)
        if hits.size > limit:
            hits = hits[np.argpartition(-scores[hits], limit - 1)[:limit]]
        order = hits[np.argsort(-scores[hits], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in order]


_Postings = dict[str, tuple[NDArray[np.int64], NDArray[np.float32]]]


def _pairs(said: Sequence[str]) -> list[str]:
    """Adjacent words (stop words left out, so "gender and sexuality" pairs gender with sexuality)."""
    return [f"{a} {b}" for a, b in itertools.pairwise(said)]


def _scored(postings: _Postings, terms: Iterable[str], size: int) -> NDArray[np.float32]:
    scores = np.zeros(size, dtype=np.float32)
    for term in terms:
        posting = postings.get(term)
        if posting is not None:
            scores[posting[0]] += posting[1]
    return scores


def _postings(tokenised: Sequence[Counter[str]]) -> _Postings:
    """Per term: the documents holding it and each one's BM25 contribution (idf x saturated tf)."""
    lengths = np.array([sum(c.values()) for c in tokenised], dtype=np.float32)
    average = (float(lengths.mean()) if len(tokenised) else 1.0) or 1.0
    by_term: dict[str, list[tuple[int, int]]] = {}
    for doc, counts in enumerate(tokenised):
        for term, tf in counts.items():
            by_term.setdefault(term, []).append((doc, tf))
    total = len(tokenised)
    postings: _Postings = {}
    for term, entries in by_term.items():
        idf = math.log(1 + (total - len(entries) + 0.5) / (len(entries) + 0.5))
        docs = np.array([d for d, _ in entries], dtype=np.int64)
        freq = np.array([t for _, t in entries], dtype=np.float32)
        norm = K1 * (1 - B + B * lengths[docs] / average)
        postings[term] = (docs, (idf * freq * (K1 + 1) / (freq + norm)).astype(np.float32))
    return postings
