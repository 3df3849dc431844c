"""Medication lexicon (medications.md): classify free-text medication names.

Pure: the lexicon ships as data in ``intake/data/medications.json``.
"""

LEXICON_VERSION = "1.0"


def classify(name):
    """Return the lexicon class keys that medication ``name`` matches, in class order."""
    raise NotImplementedError("LEXICON: being written")
