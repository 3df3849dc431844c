"""Medication lexicon (medications.md): classify free-text medication names.

Pure: no Django, no database. The lexicon ships as data in ``intake/data/medications.json``
and is loaded once, on first use. Matching is whole-token and contiguous (section 1): there
is no fuzzy matching, and a name that matches nothing is "not recognized" (rule MED-10).

``LEXICON_VERSION`` and ``CLASSES`` are module attributes resolved lazily from the data file.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

DATA_PATH = Path(__file__).resolve().parent / "data" / "medications.json"

_DELETED = re.compile(r"['’.]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])")


@dataclass(frozen=True, slots=True)
class MedicationClass:
    """One lexicon class: its key, its label and its terms as written in the spec."""

    key: str
    label: str
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DiazepamEquivalent:
    """One row of the benzodiazepine diazepam-equivalence reference table (text, as given)."""

    drug: str
    ashton: str
    va_dod_2021: str


@dataclass(frozen=True, slots=True)
class _Lexicon:
    version: str
    classes: tuple[MedicationClass, ...]
    labels: dict[str, str]
    # first token -> ((term tokens, class indexes), ...); a term listed under several
    # classes appears once with all of its class indexes.
    index: dict[str, tuple[tuple[tuple[str, ...], frozenset[int]], ...]]
    diazepam_equivalents: tuple[DiazepamEquivalent, ...]


def normalize(name: str) -> tuple[str, ...]:
    """Return the matching tokens of ``name`` (medications.md section 1.1)."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _DELETED.sub("", text)
    text = _NON_ALNUM.sub(" ", text)
    text = _LETTER_DIGIT.sub(" ", text)
    return tuple(text.split())


@functools.cache
def _lexicon() -> _Lexicon:
    with DATA_PATH.open(encoding="utf-8") as fh:
        data = json.load(fh)
    classes = tuple(
        MedicationClass(key=c["key"], label=c["label"], terms=tuple(c["terms"]))
        for c in data["classes"]
    )
    keys = [c.key for c in classes]
    if len(set(keys)) != len(keys):
        raise ValueError("medications.json: duplicate class key")
    by_tokens: dict[tuple[str, ...], set[int]] = {}
    for position, med_class in enumerate(classes):
        for term in med_class.terms:
            tokens = normalize(term)
            if not tokens:
                raise ValueError(f"medications.json: term {term!r} has no tokens")
            by_tokens.setdefault(tokens, set()).add(position)
    index: dict[str, list[tuple[tuple[str, ...], frozenset[int]]]] = {}
    for tokens, positions in by_tokens.items():
        index.setdefault(tokens[0], []).append((tokens, frozenset(positions)))
    equivalents = tuple(
        DiazepamEquivalent(drug=r["drug"], ashton=r["ashton"], va_dod_2021=r["va_dod_2021"])
        for r in data["diazepam_equivalents"]["rows"]
    )
    return _Lexicon(
        version=str(data["version"]),
        classes=classes,
        labels={c.key: c.label for c in classes},
        index={first: tuple(entries) for first, entries in index.items()},
        diazepam_equivalents=equivalents,
    )


@functools.lru_cache(maxsize=4096)
def classify(name: str) -> tuple[str, ...]:
    """Return the class keys that medication ``name`` matches, in class-table order.

    An empty tuple means the name is not recognized (rule MED-10).
    """
    lexicon = _lexicon()
    tokens = normalize(name)
    found: set[int] = set()
    for start, token in enumerate(tokens):
        for term_tokens, positions in lexicon.index.get(token, ()):
            if tokens[start : start + len(term_tokens)] == term_tokens:
                found |= positions
    return tuple(lexicon.classes[position].key for position in sorted(found))


def class_label(key: str) -> str:
    """Return the spec's label for class ``key``; raise KeyError for an unknown key."""
    return _lexicon().labels[key]


def diazepam_equivalents() -> tuple[DiazepamEquivalent, ...]:
    """Return the diazepam-equivalence reference table (section 3); never used to compute."""
    return _lexicon().diazepam_equivalents


def __getattr__(name: str):
    """Resolve ``LEXICON_VERSION`` and ``CLASSES`` from the data file on first access."""
    if name == "LEXICON_VERSION":
        return _lexicon().version
    if name == "CLASSES":
        return _lexicon().classes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
