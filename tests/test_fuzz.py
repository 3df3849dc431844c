"""Property-based tests: bad input never breaks the wizard; the rules never raise on valid answers.

Part one posts arbitrary form bodies (wrong types, huge strings, NUL, lone
surrogates sent as invalid UTF-8 bytes, missing, extra and forged fields) to
every wizard step and to the review step's submit. Part two generates answers
from the instrument definition (what the forms can accept) and runs
``rules.evaluate`` and ``rules.derive`` on them. Part three posts arbitrary
bodies, forged ids among them, to the review panel's actions.
"""

import datetime as dt
import json
from decimal import Decimal
from urllib.parse import quote

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake import instrument, lexicon, reviews, rules, services
from intake.models import Addendum, Determination, Draft, Review, Screening
from intake.thresholds import DEFAULTS
from tests.conftest import PASSWORD
from tests.factories import quiet_answers
from tests.review_data import flagged_screening
from tests.wizard_helpers import applicable_steps, post_data, step_url

FUZZ_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NORMAL_STATUSES = {200, 302, 400, 403, 404}
FORBIDDEN_WORDS = (
    "eligible",
    "approved",
    "cleared",
    "safe to treat",
    "ok to proceed",
    "do not treat",
    "not a candidate",
)


# ---------------------------------------------------------------------------
# Strategies: arbitrary posted values


def _huge(text):
    return text * (20_000 // max(len(text), 1) + 1)


raw_text = st.one_of(
    st.text(max_size=40),
    # Lone surrogates and NUL: browsers never send them, attackers can (as bytes).
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=5),
    st.text(
        alphabet=st.sampled_from(["\x00", "\ufeff", "\u202e", "é", "𝔘", "\r", "\n", "<", "'"]),
        max_size=10,
    ),
    st.text(min_size=1, max_size=3).map(_huge),
    st.sampled_from(
        [
            "",
            " ",
            "yes",
            "no",
            "unsure",
            "none",
            "on",
            "off",
            "true",
            "1",
            "0",
            "-1",
            "1e309",
            "NaN",
            "Infinity",
            "-0",
            "72.5",
            "0x1F",
            "99999999999999999999999999",
            "2024-02-30",
            "1800-01-01",
            "9999-12-31",
            "2024-01-01T25:61",
            "null",
            "[]",
            "{}",
            "review",
            "__proto__",
            "%00",
            "../../etc/passwd",
        ]
    ),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.dates().map(dt.date.isoformat),
    st.datetimes().map(lambda value: value.strftime("%Y-%m-%dT%H:%M")),
)


def plausible_value(q):
    """Return a strategy of strings a browser might post for question ``q``."""
    keys = [str(choice.key) for choice in q.choices]
    if keys:
        return st.sampled_from(keys)
    return raw_text


def field_values(q):
    """Return a strategy of the posted value list for question ``q`` (one or many values)."""
    one = st.one_of(plausible_value(q), raw_text)
    return st.lists(one, min_size=0, max_size=4)


@st.composite
def step_bodies(draw, slug):
    """Draw ``[(name, value)]`` pairs of a POST to step ``slug`` (or a forged step)."""
    pairs = []
    step = instrument.STEPS_BY_SLUG.get(slug)
    questions = list(step.questions) if step else []
    # Some fields of other steps too (extra fields, and a forged prefix).
    others = draw(st.lists(st.sampled_from(list(instrument.QUESTIONS.values())), max_size=3))
    for q in questions + others:
        if draw(st.booleans()):
            continue
        name = f"{slug}-{q.code}"
        if q.type == instrument.MED_LIST:
            rows = draw(st.integers(min_value=0, max_value=4))
            for index in range(rows):
                row = draw(st.sampled_from(["0", "1", "2", "-1", "99", "x", str(10**30)]))
                index_text = row if draw(st.booleans()) else str(index)
                for key in instrument.MED_ROW_KEYS + ("bogus",):
                    if draw(st.booleans()):
                        pairs.append((f"{name}-{index_text}-{key}", draw(raw_text)))
            if draw(st.booleans()):
                pairs.append((name, draw(raw_text)))
            continue
        for value in draw(field_values(q)):
            pairs.append((name, value))
    extras = draw(
        st.lists(
            st.sampled_from(
                [
                    "wizard_goto_step",
                    "return_to",
                    "save_exit",
                    "autosave",
                    "csrfmiddlewaretoken",
                    "screening_wizard-current_step",
                    "current_step",
                    f"{slug}-",
                    "-",
                    "review-staff_attestation",
                ]
            ),
            max_size=4,
        )
    )
    for name in extras:
        value = draw(st.one_of(st.sampled_from(list(instrument.STEP_SLUGS)), raw_text))
        pairs.append((name, value))
    return pairs


def encode_body(pairs):
    """Return an urlencoded body; text that is not valid UTF-8 is sent as its raw bytes."""

    def encode(text):
        return quote(text.encode("utf-8", "surrogatepass"), safe="")

    return "&".join(f"{encode(key)}={encode(value)}" for key, value in pairs)


forged_steps = st.one_of(
    st.sampled_from(["done", "0", "REVIEW", "review ", "..", "%2e%2e", "start", "index.html"]),
    st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20),
)
any_step = st.one_of(st.sampled_from(list(instrument.STEP_SLUGS)), forged_steps)


# ---------------------------------------------------------------------------
# Invariants of a stored draft


def assert_valid_answers(answers, thresholds):
    """Fail unless ``answers`` is what the forms could have produced (types, ranges, lengths)."""
    assert instrument.prune_hidden(answers, thresholds) == answers
    for code, value in answers.items():
        q = instrument.question(code)
        keys = [choice.key for choice in q.choices]
        if q.type in (instrument.YN, instrument.YNU, instrument.SINGLE, instrument.SCALE):
            assert value in keys, code
        elif q.type == instrument.MULTI:
            assert value and set(value) <= set(keys), code
            assert len(value) == 1 or not set(value) & instrument.EXCLUSIVE_KEYS, code
        elif q.type == instrument.INT:
            assert type(value) is int and q.min_value <= value <= q.max_value, code
        elif q.type == instrument.DECIMAL:
            assert isinstance(value, Decimal) and q.min_value <= value <= q.max_value, code
        elif q.type == instrument.DATE:
            assert type(value) is dt.date, code
        elif q.type == instrument.DATETIME:
            assert isinstance(value, dt.datetime) and value.utcoffset() is not None, code
        elif q.type == instrument.TEXT:
            assert isinstance(value, str) and "\x00" not in value, code
            assert len(value) <= (q.max_length or 10**6), code
        elif q.type == instrument.BOOL:
            assert isinstance(value, bool), code
        elif q.type == instrument.MED_LIST:
            assert 0 < len(value) <= instrument.MED_MAX_ROWS, code
            for row in value:
                assert set(row) == set(instrument.MED_ROW_KEYS)
                assert row["name"] and len(row["name"]) <= instrument.MED_NAME_MAX
                assert all(isinstance(part, str) and "\x00" not in part for part in row.values())


def assert_draft_intact(draft_pk):
    draft = Draft.objects.get(pk=draft_pk)
    json.dumps(draft.wizard_state)
    if draft.screening_id is not None:
        assert draft.answers == {}
        answers = instrument.decode_answers(draft.screening.answers)
        assert answers
        return
    assert set(draft.answers) <= set(instrument.QUESTIONS)
    answers = instrument.decode_answers(draft.answers)
    _version, thresholds = services.current_thresholds()
    assert_valid_answers(answers, thresholds)
    assert instrument.encode_answers(answers) == draft.answers


# ---------------------------------------------------------------------------
# Part one: the wizard over HTTP


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    client.raise_request_exception = True
    return client


PRIMED = {}


@pytest.fixture
def primed_state(staff_client, staff_user):
    """Return the stored state of a draft completed up to (not including) the review step."""
    if not PRIMED:
        # The state holds no ids, so one walk through the wizard serves every test.
        draft = Draft.objects.create(created_by=staff_user)
        answers = quiet_answers(staff_attestation=None)
        for slug in applicable_steps(answers):
            if slug == "review":
                continue
            response = staff_client.post(step_url(draft, slug), post_data(slug, answers))
            assert response.status_code == 302
        draft.refresh_from_db()
        PRIMED.update(answers=draft.answers, wizard_state=draft.wizard_state, last_step="review")
    return json.loads(json.dumps(PRIMED))


def new_draft(user, primed_state, primed):
    if primed:
        return Draft.objects.create(created_by=user, **primed_state)
    return Draft.objects.create(created_by=user)


def post(client, draft, slug, pairs):
    url = f"/drafts/{draft.pk}/{quote(slug, safe='')}/"
    response = client.post(
        url, encode_body(pairs), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in NORMAL_STATUSES, (slug, response.status_code)
    return response


@FUZZ_SETTINGS
@given(data=st.data(), primed=st.booleans())
def test_arbitrary_posts_to_every_step_never_fail_or_corrupt_the_draft(
    staff_client, staff_user, primed_state, data, primed
):
    staff_client.force_login(staff_user)
    draft = new_draft(staff_user, primed_state, primed)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        slug = data.draw(any_step)
        pairs = data.draw(step_bodies(slug))
        post(staff_client, draft, slug, pairs)
        assert_draft_intact(draft.pk)
    response = staff_client.get(f"/drafts/{draft.pk}/review/")
    assert response.status_code in NORMAL_STATUSES


@pytest.mark.parametrize("slug", instrument.STEP_SLUGS)
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_each_step_survives_arbitrary_posts(staff_client, staff_user, primed_state, slug, data):
    staff_client.force_login(staff_user)
    draft = new_draft(staff_user, primed_state, data.draw(st.booleans()))
    post(staff_client, draft, slug, data.draw(step_bodies(slug)))
    assert_draft_intact(draft.pk)


@settings(FUZZ_SETTINGS, max_examples=30)
@given(data=st.data())
def test_review_submit_with_arbitrary_values_submits_once_or_shows_the_review(
    staff_client, staff_user, primed_state, data
):
    staff_client.force_login(staff_user)
    draft = new_draft(staff_user, primed_state, primed=True)
    before = Screening.objects.count()
    pairs = data.draw(step_bodies("review"))
    if data.draw(st.booleans()):
        pairs.append(("review-staff_attestation", data.draw(st.sampled_from(["on", "1", "true"]))))
    response = post(staff_client, draft, "review", pairs)
    # A repeat of the same submit is idempotent.
    post(staff_client, draft, "review", pairs)
    draft.refresh_from_db()
    assert Screening.objects.count() - before == (1 if draft.screening_id else 0)
    if draft.screening_id:
        assert response.status_code == 302
        assert response["Location"] == draft.screening.get_absolute_url()
    assert_draft_intact(draft.pk)


def test_null_characters_are_dropped_huge_numbers_and_forged_names_refused_none_stored(
    staff_client, staff_user, primed_state
):
    draft = new_draft(staff_user, primed_state, primed=True)
    response = post(
        staff_client,
        draft,
        "patient",
        [
            ("patient-first_name", "Al\x00ex"),
            ("patient-\x00", "x"),
            ("patient-bogus", "y" * 5000),
            ("patient-first_name-0-name", "z"),
        ],
    )
    assert response.status_code == 200
    response = post(
        staff_client,
        draft,
        "medications",
        [
            ("medications-med_none", ""),
            ("medications-medications-0-name", "Sertra\x00line"),
            ("medications-medications-0-dose", "\udcff"),
            ("medications-med_reviewed_with_patient", "yes"),
        ],
    )
    # NUL characters leave every submitted value before any view (NulFreeInputMiddleware),
    # so the row is "Sertraline" and the step goes on.
    assert response.status_code == 302
    response = post(
        staff_client,
        draft,
        "vitals",
        [("vitals-vit_sbp", "9" * 5000), ("vitals-vit_weight_kg", "9" * 5000)],
    )
    assert response.status_code == 200
    assert_draft_intact(draft.pk)
    draft.refresh_from_db()
    stored = draft.wizard_state["step_data"]
    assert set(stored["patient"]) <= {
        f"patient-{code}" for code in instrument.STEPS_BY_SLUG["patient"].codes
    }
    assert "\x00" not in json.dumps(stored, ensure_ascii=False)
    assert stored["medications"]["medications-medications-0-name"] == ["Sertraline"]


def test_attested_review_submit_creates_the_screening(staff_client, staff_user, primed_state):
    draft = new_draft(staff_user, primed_state, primed=True)
    response = post(staff_client, draft, "review", [("review-staff_attestation", "on")])
    draft.refresh_from_db()
    assert draft.screening_id is not None
    assert response["Location"] == draft.screening.get_absolute_url()


def test_draft_of_another_user_is_not_found(staff_client, make_user, primed_state):
    other = make_user("other", "intake_staff")
    draft = Draft.objects.create(created_by=other, **primed_state)
    post(staff_client, draft, "review", [("review-staff_attestation", "on")])
    assert Draft.objects.get(pk=draft.pk).screening_id is None


# ---------------------------------------------------------------------------
# Part two: rules on anything the forms accept

LEXICON_TERMS = sorted({term for med_class in lexicon.CLASSES for term in med_class.terms})
TODAY = dt.date(2025, 6, 15)
med_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30
)


def med_row():
    name = (
        st.one_of(
            st.sampled_from(LEXICON_TERMS),
            st.builds(lambda a, b: f"{a} {b}".strip(), st.sampled_from(LEXICON_TERMS), med_text),
            med_text,
        )
        .map(lambda text: text.strip()[: instrument.MED_NAME_MAX])
        .filter(bool)
    )
    part = med_text.map(str.strip)
    return st.fixed_dictionaries({"name": name, "dose": part, "frequency": part})


def aware_datetimes():
    zones = st.sampled_from(
        [
            dt.UTC,
            dt.timezone(dt.timedelta(hours=-5)),
            dt.timezone(dt.timedelta(hours=9, minutes=30)),
        ]
    )
    # Hypothesis takes naive bounds and attaches the drawn zone itself.
    low, high = dt.datetime(2020, 1, 1), dt.datetime(2026, 12, 31)  # noqa: DTZ001
    return st.datetimes(min_value=low, max_value=high, timezones=zones).map(
        lambda value: value.replace(second=0, microsecond=0)
    )


def value_strategy(q):
    """Return a strategy of typed values the form of ``q`` accepts."""
    keys = [choice.key for choice in q.choices]
    if q.type in (instrument.YN, instrument.YNU, instrument.SINGLE, instrument.SCALE):
        return st.sampled_from(keys)
    if q.type == instrument.MULTI:
        exclusive = [key for key in keys if key in instrument.EXCLUSIVE_KEYS]
        regular = [key for key in keys if key not in instrument.EXCLUSIVE_KEYS]
        subset = st.lists(st.sampled_from(regular), min_size=1, unique=True).map(
            lambda chosen: sorted(chosen, key=keys.index)
        )
        return (
            st.one_of(subset, st.sampled_from(exclusive).map(lambda key: [key]))
            if exclusive
            else subset
        )
    if q.type == instrument.INT:
        return st.integers(min_value=q.min_value, max_value=q.max_value)
    if q.type == instrument.DECIMAL:
        places = q.decimal_places
        return st.decimals(min_value=q.min_value, max_value=q.max_value, places=places).map(
            lambda value: value.quantize(Decimal(1).scaleb(-places))
        )
    if q.type == instrument.DATE:
        return st.dates(min_value=dt.date(1905, 1, 1), max_value=TODAY)
    if q.type == instrument.DATETIME:
        return aware_datetimes()
    if q.type == instrument.TEXT:
        return (
            st.text(
                alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                min_size=q.min_length or 1,
                max_size=min(q.max_length or 200, 200),
            )
            .map(str.strip)
            .filter(lambda text: len(text) >= (q.min_length or 1))
        )
    if q.type == instrument.BOOL:
        return st.booleans()
    if q.type == instrument.MED_LIST:
        return st.lists(med_row(), min_size=1, max_size=12)
    raise AssertionError(q.type)


answers_strategy = st.fixed_dictionaries(
    {}, optional={code: value_strategy(q) for code, q in instrument.QUESTIONS.items()}
)
nows = aware_datetimes().filter(lambda now: now.date() >= dt.date(2020, 1, 2))
thresholds_strategy = st.sampled_from([None, dict(DEFAULTS)])


def check_flags(flags):
    assert all(isinstance(flag, rules.Flag) for flag in flags)
    keys = [(not flag.urgent, rules.SEVERITY_ORDER[flag.severity]) for flag in flags]
    assert keys == sorted(keys)
    assert len({flag.rule_id for flag in flags}) == len(flags)
    for flag in flags:
        assert flag.rule_id in rules.RULES_BY_ID
        assert flag.urgent is False or flag.severity == "review"
        assert isinstance(flag.message, str) and flag.message.strip()
        lowered = flag.message.lower()
        assert not any(word in lowered for word in FORBIDDEN_WORDS), flag.message
        json.dumps({"evidence": list(flag.evidence), "basis": list(flag.basis)})


RULES_SETTINGS = settings(max_examples=100, deadline=None)


@RULES_SETTINGS
@given(answers=answers_strategy, now=nows, thresholds=thresholds_strategy)
def test_evaluate_never_raises_on_what_the_forms_accept(answers, now, thresholds):
    values = dict(DEFAULTS)
    shown = instrument.prune_hidden(answers, values)
    check_flags(rules.evaluate(shown, now=now, thresholds=thresholds))


@RULES_SETTINGS
@given(answers=answers_strategy, now=nows)
def test_evaluate_never_raises_even_on_unpruned_answers(answers, now):
    check_flags(rules.evaluate(answers, now=now))


@RULES_SETTINGS
@given(answers=answers_strategy, now=nows, thresholds=thresholds_strategy)
def test_derive_never_raises_and_is_json_safe(answers, now, thresholds):
    shown = instrument.prune_hidden(answers, dict(DEFAULTS))
    derived = rules.derive(shown, now=now, thresholds=thresholds)
    assert set(derived) <= set(rules.DERIVED_LABELS)
    json.dumps(services.jsonable(derived))


@RULES_SETTINGS
@given(answers=answers_strategy, now=nows)
def test_derive_never_raises_on_unpruned_answers(answers, now):
    json.dumps(services.jsonable(rules.derive(answers, now=now)))


@RULES_SETTINGS
@given(answers=answers_strategy, now=nows)
def test_answers_round_trip_through_the_codec(answers, now):
    encoded = instrument.encode_answers(answers)
    json.dumps(encoded)
    assert instrument.decode_answers(json.loads(json.dumps(encoded))) == answers


# INSTRUMENT.md 6.1: evaluate "must not assume that step validation ran". Imported
# data or a validation defect can put any JSON-like value under any code.
junk_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.dates(),
)
junk_answers = st.dictionaries(st.sampled_from(sorted(instrument.QUESTIONS)), junk_values)


@RULES_SETTINGS
@given(typed=answers_strategy, junk=junk_answers, now=nows)
def test_evaluate_never_raises_on_wrongly_typed_answers(typed, junk, now):
    check_flags(rules.evaluate({**typed, **junk}, now=now))


@pytest.mark.parametrize(
    "junk",
    [
        {"vit_sbp": None},
        {"vit_sbp": "150"},
        {"vit_sbp": 190, "vit_dbp": "95"},
        {"ciwa_ar": Decimal("NaN")},
        {"vit_bac": Decimal("NaN")},
        {"audc_1": "4"},
    ],
)
def test_evaluate_treats_a_wrongly_typed_comparison_as_false(junk):
    # Regression examples of the property above (each raised before).
    answers = {**quiet_answers(), **junk}
    check_flags(rules.evaluate(answers, now=dt.datetime(2025, 6, 15, 12, tzinfo=dt.UTC)))


# ---------------------------------------------------------------------------
# Part three: the review panel's actions over HTTP

# Text a forged post may put where the panel posts an id or a count: digits to
# ``str.isdigit`` but not ASCII ("²", which int() refuses; Arabic-Indic and other
# scripts' digits, which int() reads as a number), more digits than any key has
# (int() refuses 4,301 or more), and near-numbers.
forged_ids = st.one_of(
    st.sampled_from(
        ["²", "³", "¹", "١٢", "٣", "۴", "०", "๑", "𝟏", "+1", "-1", " 1", "1 ", "1.0", "0x1", "1e3"]
    ),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=6000).map(lambda digits: "9" * digits),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)

PANEL_ACTIONS = {
    "claim": {"take_over": "choice", "claimed_by": "id"},
    "release": {"claimed_by": "id"},
    "review": {
        "determination": "id",
        "reviews_seen": "id",
        "ack_SUI-01": "choice",
        "note": "text",
        "password": "password",
    },
    "addendum": {"review": "id", "text": "text", "password": "password", "form_token": "text"},
    "unlock": {"review": "id", "reason": "text"},
}


@st.composite
def panel_bodies(draw, action, ids):
    """Draw ``[(name, value)]`` pairs of a POST to the panel's ``action``; ids from ``ids``."""
    values = {
        "id": st.one_of(forged_ids, st.sampled_from([str(pk) for pk in ids]), raw_text),
        "choice": st.one_of(st.sampled_from(["1", "on", "0", ""]), forged_ids, raw_text),
        "text": st.one_of(raw_text, forged_ids),
        "password": st.one_of(st.just(PASSWORD), raw_text),
    }
    pairs = []
    for name, kind in PANEL_ACTIONS[action].items():
        # Usually sent, sometimes missing or sent twice.
        for _ in range(draw(st.sampled_from([1, 1, 1, 0, 2]))):
            pairs.append((name, draw(values[kind])))
    return pairs


@pytest.fixture
def panel(client, make_user, staff_user):
    """Return (client, clinic admin, [a screening claimed by another, a signed one])."""
    admin = make_user("fuzz-admin", "clinic_admin")
    other = make_user("fuzz-clinician", "clinician")
    open_one = flagged_screening(staff_user, ["SUI-01"])
    reviews.claim_screening(screening_id=open_one.pk, user=other)
    signed = flagged_screening(staff_user, ["SUI-01"])
    reviews.record_review(
        screening_id=signed.pk,
        user=other,
        determination_id=Determination.objects.first().pk,
        note="Reviewed.",
        acknowledged_rule_ids=["SUI-01"],
        password=PASSWORD,
    )
    client.raise_request_exception = True
    return client, admin, [open_one, signed]


def assert_panel_records_sound():
    """Fail unless every stored review, addendum and claim is one the services could make."""
    labels = set(Determination.objects.values_list("label", flat=True))
    for review in Review.objects.all():
        assert review.determination in labels
        assert review.note.strip() and len(review.note) <= reviews.NOTE_MAX_LENGTH
        assert len(review.void_reason) <= reviews.REASON_MAX_LENGTH
    for addendum in Addendum.objects.all():
        assert addendum.text.strip() and len(addendum.text) <= reviews.NOTE_MAX_LENGTH
    for screening in Screening.objects.select_related("claimed_by"):
        assert screening.claimed_by_id is None or screening.claimed_by is not None


@pytest.mark.parametrize("action", PANEL_ACTIONS)
@settings(FUZZ_SETTINGS, max_examples=40)
@given(data=st.data())
def test_arbitrary_posts_to_the_review_panels_actions_never_fail(panel, action, data):
    client, admin, screenings = panel
    # Wrong signatures count toward the sign-in lockout, which signs the user out.
    AccessAttempt.objects.all().delete()
    client.force_login(admin)
    screening = data.draw(st.sampled_from(screenings))
    ids = {
        *get_user_model().objects.values_list("pk", flat=True),
        *Determination.objects.values_list("pk", flat=True),
        *Review.objects.values_list("pk", flat=True),
        0,
    }
    pairs = data.draw(panel_bodies(action, sorted(ids)))
    url = reverse(f"admin:intake_screening_{action}", args=[screening.pk])
    response = client.post(
        url, encode_body(pairs), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in NORMAL_STATUSES, (action, response.status_code)
    assert_panel_records_sound()
