"""Tests for intake.lexicon (medications.md sections 1-3). Pure: no database."""

import json
import subprocess
import sys
import timeit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake import lexicon
from intake.lexicon import (
    DATA_PATH,
    class_label,
    classify,
    diazepam_equivalents,
    normalize,
)

DATA = json.loads(DATA_PATH.read_text(encoding="utf-8"))

# Class keys and labels in the order of the section 2 table, copied by hand.
SPEC_CLASSES = [
    ("benzodiazepine", "Benzodiazepines"),
    ("z_drug", "Z-drug hypnotics"),
    ("barbiturate", "Barbiturates"),
    (
        "other_sedative",
        "Other sedating medicines: sedating antihistamines, muscle relaxants, "
        "gabapentinoids, other hypnotics",
    ),
    ("antipsychotic", "Antipsychotics"),
    ("opioid", "Opioids, including tramadol, methadone and buprenorphine"),
    ("stimulant", "Psychostimulants, wake-promoting agents and other sympathomimetics"),
    ("maoi", "Monoamine oxidase inhibitors"),
    ("lamotrigine", "Lamotrigine"),
    ("thyroid_hormone", "Thyroid hormones"),
    ("theophylline", "Theophylline and aminophylline"),
    ("cyp3a4_strong_inducer", "Strong CYP3A4 inducers"),
    ("cyp3a4_strong_inhibitor", "Strong CYP3A4 inhibitors"),
    ("antihypertensive", "Blood-pressure-lowering medicines"),
    ("naltrexone", "Naltrexone"),
    ("aud_other", "Other alcohol-use-disorder medicines (information only)"),
    ("ketamine", "Ketamine and esketamine"),
]

# Section 1 examples: entered name, tokens, classes.
SPEC_EXAMPLES = [
    ("Xanax 0.5mg", ("xanax", "05", "mg"), ("benzodiazepine",)),
    ("clonazepam (Klonopin) 1 mg", ("clonazepam", "klonopin", "1", "mg"), ("benzodiazepine",)),
    ("St. John's Wort", ("st", "johns", "wort"), ("cyp3a4_strong_inducer",)),
    ("Toprol-XL 50", ("toprol", "xl", "50"), ("antihypertensive",)),
    ("Suboxone 8/2 film", ("suboxone", "8", "2", "film"), ("opioid",)),
    ("dexmethylphenidate ER", ("dexmethylphenidate", "er"), ("stimulant",)),
    ("Tylenol PM", ("tylenol", "pm"), ("other_sedative",)),
    ("sertraline 100 mg", ("sertraline", "100", "mg"), ()),
]

# Hand-copied from the section 2 members column: term -> every class that lists it.
SPEC_TERM_SAMPLE = {
    "alprazolam": ("benzodiazepine",),
    "Librax": ("benzodiazepine",),
    "Sympazan": ("benzodiazepine",),
    "Valtoco": ("benzodiazepine",),
    "estazolam": ("benzodiazepine",),
    "Seizalam": ("benzodiazepine",),
    "Halcion": ("benzodiazepine",),
    "Edluar": ("z_drug",),
    "zopiclone": ("z_drug",),
    "phenobarbital": ("barbiturate", "cyp3a4_strong_inducer"),
    "primidone": ("barbiturate", "cyp3a4_strong_inducer"),
    "Mysoline": ("barbiturate", "cyp3a4_strong_inducer"),
    "Esgic": ("barbiturate",),
    "Butisol": ("barbiturate",),
    "Tylenol PM": ("other_sedative",),
    "Advil PM": ("other_sedative",),
    "Aleve PM": ("other_sedative",),
    "ZzzQuil": ("other_sedative",),
    "Chlor-Trimeton": ("other_sedative",),
    "orphenadrine": ("other_sedative",),
    "Fleqsuvy": ("other_sedative",),
    "gabapentin enacarbil": ("other_sedative",),
    "Horizant": ("other_sedative",),
    "oxybate": ("other_sedative",),
    "oxybates": ("other_sedative",),
    "Lumryz": ("other_sedative",),
    "Quviviq": ("other_sedative",),
    "pimozide": ("antipsychotic",),
    "Lybalvi": ("antipsychotic",),
    "Rykindo": ("antipsychotic",),
    "Geodon": ("antipsychotic",),
    "MS Contin": ("opioid",),
    "Roxicet": ("opioid",),
    "Tylenol 3": ("opioid",),
    "Tylenol 4": ("opioid",),
    "ConZip": ("opioid",),
    "Brixadi": ("opioid",),
    "pentazocine": ("opioid",),
    "Xelstrym": ("stimulant",),
    "QuilliChew": ("stimulant",),
    "Relexxii": ("stimulant",),
    "serdexmethylphenidate": ("stimulant",),
    "Azstarys": ("stimulant",),
    "Qsymia": ("stimulant",),
    "Zyrtec-D": ("stimulant",),
    "Sudafed": ("stimulant",),
    "safinamide": ("maoi",),
    "methylene blue": ("maoi",),
    "ProvayBlue": ("maoi",),
    "Subvenite": ("lamotrigine",),
    "Levo-T": ("thyroid_hormone",),
    "liotrix": ("thyroid_hormone",),
    "desiccated thyroid": ("thyroid_hormone",),
    "thyroid desiccated": ("thyroid_hormone",),
    "Nature-Throid": ("thyroid_hormone",),
    "WP Thyroid": ("thyroid_hormone",),
    "Theo-24": ("theophylline",),
    "aminophylline": ("theophylline",),
    "rifampin": ("cyp3a4_strong_inducer",),
    "rifampicin": ("cyp3a4_strong_inducer",),
    "Rifater": ("cyp3a4_strong_inducer",),
    "St John's wort": ("cyp3a4_strong_inducer",),
    "St John wort": ("cyp3a4_strong_inducer",),
    "Saint John's wort": ("cyp3a4_strong_inducer",),
    "hypericum": ("cyp3a4_strong_inducer",),
    "SJW": ("cyp3a4_strong_inducer",),
    "Tibsovo": ("cyp3a4_strong_inducer",),
    "nirmatrelvir": ("cyp3a4_strong_inhibitor",),
    "Paxlovid": ("cyp3a4_strong_inhibitor",),
    "Symtuza": ("cyp3a4_strong_inhibitor",),
    "nefazodone": ("cyp3a4_strong_inhibitor",),
    "Zydelig": ("cyp3a4_strong_inhibitor",),
    "hydrochlorothiazide": ("antihypertensive",),
    "HCTZ": ("antihypertensive",),
    "Entresto": ("antihypertensive",),
    "Cartia": ("antihypertensive",),
    "CaroSpir": ("antihypertensive",),
    "InnoPran": ("antihypertensive",),
    "Toprol": ("antihypertensive",),
    "methyldopa": ("antihypertensive",),
    "Tekturna": ("antihypertensive",),
    "Contrave": ("naltrexone",),
    "Antabuse": ("aud_other",),
    "Ketalar": ("ketamine",),
    "Spravato": ("ketamine",),
}

# Group headings and bracketed explanations are not terms.
NOT_TERMS = [
    "Sedating antihistamines",
    "Muscle relaxants",
    "Gabapentinoids",
    "Other hypnotics",
    "ACE inhibitors",
    "Angiotensin receptor blockers",
    "Calcium-channel blockers",
    "Beta-blockers",
    "Vasodilators and others",
    "always co-packaged with ritonavir",
    "the last four",
    "see section 4",
]

ALL_TERMS = [(c["key"], term) for c in DATA["classes"] for term in c["terms"]]


def _classes_listing(term):
    """Return the keys of every class that lists ``term`` (exact tokens), in table order."""
    tokens = normalize(term)
    return tuple(
        c["key"] for c in DATA["classes"] if any(normalize(t) == tokens for t in c["terms"])
    )


def _brute_force_classify(name):
    """Return classes by scanning every term against every token position (test oracle)."""
    tokens = normalize(name)
    keys = []
    for c in DATA["classes"]:
        for term in c["terms"]:
            term_tokens = normalize(term)
            n = len(term_tokens)
            if any(tokens[i : i + n] == term_tokens for i in range(len(tokens) - n + 1)):
                keys.append(c["key"])
                break
    return tuple(keys)


# Data file


def test_version_is_read_from_the_data_file():
    assert DATA["version"] == "1.0"
    assert lexicon.LEXICON_VERSION == "1.0"


def test_classes_are_in_the_spec_table_order_with_spec_labels():
    assert [(c["key"], c["label"]) for c in DATA["classes"]] == SPEC_CLASSES
    assert [(c.key, c.label) for c in lexicon.CLASSES] == SPEC_CLASSES


def test_class_label_returns_the_spec_label():
    for key, label in SPEC_CLASSES:
        assert class_label(key) == label


def test_class_label_rejects_an_unknown_key():
    with pytest.raises(KeyError):
        class_label("ssri")


def test_unknown_module_attribute_raises_attribute_error():
    with pytest.raises(AttributeError):
        lexicon.NOT_A_THING  # noqa: B018


@pytest.mark.parametrize(("term", "expected"), sorted(SPEC_TERM_SAMPLE.items()))
def test_data_file_lists_the_spec_term_under_exactly_its_classes(term, expected):
    assert _classes_listing(term) == expected
    assert classify(term) == expected


@pytest.mark.parametrize("text", NOT_TERMS)
def test_headings_and_bracketed_notes_are_not_terms(text):
    listed = {normalize(term) for _, term in ALL_TERMS}
    assert normalize(text) not in listed


def test_every_class_has_terms_and_no_term_is_repeated_within_a_class():
    for c in DATA["classes"]:
        tokens = [normalize(t) for t in c["terms"]]
        assert tokens, c["key"]
        assert len(tokens) == len(set(tokens)), c["key"]


def test_lexicon_has_the_spec_term_count():
    assert len(ALL_TERMS) == 475


# Every listed term matches its own classes


@pytest.mark.parametrize(("key", "term"), ALL_TERMS)
def test_every_listed_term_matches_its_own_class(key, term):
    result = classify(term)
    assert key in result
    assert result == _brute_force_classify(term)


@pytest.mark.parametrize(("key", "term"), ALL_TERMS)
def test_every_listed_term_matches_in_any_case_with_strength_and_form(key, term):
    assert key in classify(term.upper())
    assert key in classify(f"take {term.lower()} 10mg tablet twice daily")


# Normalization (section 1.1)


@pytest.mark.parametrize(("name", "tokens", "classes"), SPEC_EXAMPLES)
def test_spec_example_rows(name, tokens, classes):
    assert normalize(name) == tokens
    assert classify(name) == classes


@pytest.mark.parametrize(
    ("name", "tokens"),
    [
        ("ＸＡＮＡＸ　０.５ｍｇ", ("xanax", "05", "mg")),  # NFKC folds full-width forms
        ("ﬂuoxetine", ("fluoxetine",)),  # NFKC expands the ligature
        ("KLONOPIN", ("klonopin",)),
        ("Straße", ("strasse",)),  # casefold, not just lower()
    ],
)
def test_normalize_applies_nfkc_and_casefold(name, tokens):
    assert normalize(name) == tokens


@pytest.mark.parametrize(
    ("name", "tokens"),
    [
        ("St. John's", ("st", "johns")),
        ("St John’s wort", ("st", "johns", "wort")),
        ("0.25", ("025",)),
        ("Dr.Reddy's", ("drreddys",)),
    ],
)
def test_normalize_deletes_apostrophes_and_periods(name, tokens):
    assert normalize(name) == tokens


@pytest.mark.parametrize(
    ("name", "tokens"),
    [
        ("Toprol-XL", ("toprol", "xl")),
        ("8/2", ("8", "2")),
        ("Tylenol #3", ("tylenol", "3")),
        ("5%", ("5",)),
        ("clonazepam (Klonopin)", ("clonazepam", "klonopin")),
        ("[note]", ("note",)),
        ("a,b;c:d", ("a", "b", "c", "d")),
        ("zolpidem_cr+x", ("zolpidem", "cr", "x")),
        ("café", ("caf",)),  # a non a-z letter is replaced like any other character
    ],
)
def test_normalize_replaces_other_characters_with_spaces(name, tokens):
    assert normalize(name) == tokens


@pytest.mark.parametrize(
    ("name", "tokens"),
    [
        ("xanax0.5mg", ("xanax", "05", "mg")),
        ("theo24", ("theo", "24")),
        ("10mg", ("10", "mg")),
        ("a1b2", ("a", "1", "b", "2")),
    ],
)
def test_normalize_splits_letter_digit_boundaries(name, tokens):
    assert normalize(name) == tokens


def test_normalize_splits_on_any_whitespace():
    assert normalize("  lorazepam\t1 mg\nnightly ") == ("lorazepam", "1", "mg", "nightly")
    assert normalize("") == ()
    assert normalize(" -/. ") == ()


@given(st.text())
def test_normalize_is_idempotent_over_its_own_tokens(name):
    tokens = normalize(name)
    assert normalize(" ".join(tokens)) == tokens
    assert all(t.isascii() and t.isalnum() for t in tokens)


# Matching (section 1.2-1.6)


@pytest.mark.parametrize(
    ("name", "classes"),
    [
        ("dexmethylphenidate", ("stimulant",)),
        ("serdexmethylphenidate", ("stimulant",)),
        ("esketamineX", ()),
        ("ketamineX", ()),
        ("methylphenidatex", ()),
        ("Xanaxx", ()),
        ("Toprolol", ()),
        ("Tylenol", ()),  # only "Tylenol PM", "Tylenol 3" and "Tylenol 4" are terms
        ("Tylenol 325 mg", ()),
        ("methylene", ()),
        ("blue", ()),
        ("thyroid", ()),
        ("St wort", ()),
        ("gabapentin enacarbil", ("other_sedative",)),
    ],
)
def test_matching_is_whole_token_and_contiguous(name, classes):
    assert classify(name) == classes


def test_methylphenidate_does_not_match_inside_dexmethylphenidate():
    assert "methylphenidate" not in normalize("dexmethylphenidate")
    assert _brute_force_classify("dexmethylphenidate") == ("stimulant",)
    listed = {term for _, term in ALL_TERMS}
    assert {"methylphenidate", "dexmethylphenidate", "serdexmethylphenidate"} <= listed


def test_a_longer_token_containing_a_term_matches_nothing():
    assert classify("esketamine") == ("ketamine",)
    assert classify("esketamineX 56 mg") == ()
    assert classify("ketamine") == ("ketamine",)


@pytest.mark.parametrize(
    "name", ["XANAX", "xanax", "XaNaX", "alprazolam", "ALPRAZOLAM", "Alprazolam ER"]
)
def test_matching_is_case_insensitive_for_brand_and_generic(name):
    assert classify(name) == ("benzodiazepine",)


@pytest.mark.parametrize(
    ("name", "classes"),
    [
        ("Toprol-XL 50", ("antihypertensive",)),
        ("metoprolol succinate ER 25 mg tablet", ("antihypertensive",)),
        ("xanax0.5mg", ("benzodiazepine",)),
        ("Xanax XR 1mg", ("benzodiazepine",)),
        ("Butrans 10 mcg/hr patch", ("opioid",)),
        ("sertraline hydrochloride 50mg", ()),
        ("Theo-24 300 mg", ("theophylline",)),
        ("theo24", ("theophylline",)),
        ("Tylenol #3", ("opioid",)),
        ("Tylenol with codeine #4", ("opioid",)),
        ("Claritin-D 12 hour", ("stimulant",)),
        ("St Johns wort 300 mg", ("cyp3a4_strong_inducer",)),
        ("St. John’s Wort (hypericum)", ("cyp3a4_strong_inducer",)),
        ("Levo-T 88mcg", ("thyroid_hormone",)),
        ("sodium oxybate", ("other_sedative",)),
        ("HCTZ 25", ("antihypertensive",)),
        ("methylene blue 1%", ("maoi",)),
    ],
)
def test_strengths_forms_and_salts_are_ignored(name, classes):
    assert classify(name) == classes


@pytest.mark.parametrize(
    ("name", "classes"),
    [
        ("promethazine with codeine", ("other_sedative", "opioid")),
        ("phenobarbital 30 mg", ("barbiturate", "cyp3a4_strong_inducer")),
        ("Mysoline", ("barbiturate", "cyp3a4_strong_inducer")),
        ("Paxlovid (nirmatrelvir/ritonavir)", ("cyp3a4_strong_inhibitor",)),
        ("Suboxone (buprenorphine/naloxone)", ("opioid",)),
        ("Lybalvi (olanzapine/samidorphan)", ("antipsychotic",)),
        ("Contrave (naltrexone/bupropion)", ("naltrexone",)),
        ("lisinopril and Xanax", ("benzodiazepine", "antihypertensive")),
        ("ketamine; clonidine; Adderall", ("stimulant", "antihypertensive", "ketamine")),
    ],
)
def test_multi_class_rows_return_the_union_in_class_table_order(name, classes):
    assert classify(name) == classes


@pytest.mark.parametrize(
    "name",
    [
        "sertraline",
        "topiramate",
        "lithium",
        "alprazolom",
        "trazodone 50 mg",
        "mirtazapine",
        "naloxone",
        "vitamin D 1000 IU",
        "Tylenol",
        "",
        "   ",
    ],
)
def test_unrecognized_names_return_no_classes(name):
    assert classify(name) == ()


# Diazepam-equivalence reference (section 3)


def test_diazepam_equivalents_reproduce_the_spec_table_as_text():
    rows = [(r.drug, r.ashton, r.va_dod_2021) for r in diazepam_equivalents()]
    assert rows == [
        ("alprazolam", "20", "10"),
        ("chlordiazepoxide", "0.4", "0.4"),
        ("clobazam", "0.5", "not listed"),
        ("clonazepam", "20", "10"),
        ("clorazepate", "0.67", "0.67"),
        ("diazepam", "1", "1"),
        ("estazolam", "5-10", "10"),
        ("flurazepam", "0.33-0.67", "0.67"),
        ("lorazepam", "10", "5"),
        ("oxazepam", "0.5", "0.33"),
        ("quazepam", "0.5", "1"),
        ("temazepam", "0.5", "0.67"),
        ("triazolam", "20", "40"),
        ("midazolam", "omitted: no reliable oral outpatient equivalence", "omitted"),
    ]


def test_every_diazepam_equivalent_drug_is_a_benzodiazepine_term():
    for row in diazepam_equivalents():
        assert classify(row.drug) == ("benzodiazepine",)


# Purity and speed


def test_lexicon_module_imports_no_django():
    code = "import sys, intake.lexicon as l; l.classify('xanax'); print('django' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=DATA_PATH.parents[2],
    ).stdout
    assert out.strip() == "False"


def test_cached_classify_is_well_under_fifty_microseconds():
    classify("Toprol-XL 50")
    per_call = timeit.timeit(lambda: classify("Toprol-XL 50"), number=2000) / 2000
    assert per_call < 50e-6


def test_uncached_classify_is_reasonably_fast():
    uncached = classify.__wrapped__
    name = "metoprolol succinate ER 50 mg tablet by mouth once daily with food"
    per_call = timeit.timeit(lambda: uncached(name), number=200) / 200
    assert per_call < 1e-3
