"""Review services: claim, sign and lock, addenda, unlock, thresholds versions, export."""

import csv
import datetime as dt
import importlib
import io
import threading
from html import unescape

import pytest
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.test import override_settings
from django.urls import reverse

from intake import pdf, reviews, services, thresholds
from intake.models import (
    Addendum,
    AuditEvent,
    Determination,
    Review,
    Role,
    Screening,
    ThresholdSet,
)
from intake.services import IntakeError
from tests.conftest import PASSWORD
from tests.review_data import flagged_screening

pytestmark = pytest.mark.django_db


@pytest.fixture
def screening(staff_user):
    return flagged_screening(staff_user, ["SUI-01", "BP-02", "BP-01", "AGE-02"])


@pytest.fixture
def determination():
    return Determination.objects.get(label="More information needed")


def at_once(function, argument_lists):
    """Call ``function`` once per argument list, each in its own thread, released together."""
    barrier = threading.Barrier(len(argument_lists))

    def run(*args):
        try:
            barrier.wait(timeout=5)
            function(*args)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in argument_lists]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)


def sign(screening, user, determination, **overrides):
    kwargs = {
        "screening_id": screening.pk,
        "user": user,
        "determination_id": determination.pk,
        "note": "Discussed with patient; plan documented.",
        "acknowledged_rule_ids": ["SUI-01", "BP-02"],
        "password": PASSWORD,
        **overrides,
    }
    return reviews.record_review(**kwargs)


def amend(screening, user, review_id, text, **overrides):
    kwargs = {"review_id": review_id, "text": text, "password": PASSWORD, **overrides}
    return reviews.add_addendum(screening_id=screening.pk, user=user, **kwargs)


def unlock(screening, user, review, reason="Wrong patient chart"):
    return reviews.unlock_screening(
        screening_id=screening.pk, user=user, review_id=review.pk, reason=reason
    )


def actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


# -- claim -------------------------------------------------------------------


def test_claiming_puts_the_screening_in_review_by_the_clinician(screening, clinician):
    reviews.claim_screening(screening_id=screening.pk, user=clinician)
    screening.refresh_from_db()
    assert screening.status == Screening.Status.IN_REVIEW
    assert screening.claimed_by == clinician
    assert actions() == ["intake.screening.claimed"]


def test_a_claimed_screening_is_taken_over_only_on_purpose(screening, clinician, make_user):
    other = make_user("other", "clinician")
    reviews.claim_screening(screening_id=screening.pk, user=clinician)
    with pytest.raises(IntakeError, match="in review by clinician"):
        reviews.claim_screening(screening_id=screening.pk, user=other)
    reviews.claim_screening(screening_id=screening.pk, user=other, take_over_from=clinician.pk)
    screening.refresh_from_db()
    assert screening.claimed_by == other
    assert AuditEvent.objects.order_by("id").last().detail == {"taken_over_from": clinician.pk}


def test_releasing_returns_the_screening_to_the_queue(screening, clinician):
    reviews.claim_screening(screening_id=screening.pk, user=clinician)
    reviews.release_claim(screening_id=screening.pk, user=clinician, claimed_by_id=clinician.pk)
    screening.refresh_from_db()
    assert (screening.status, screening.claimed_by) == (Screening.Status.SUBMITTED, None)


def test_a_take_over_never_takes_over_from_a_reviewer_the_page_did_not_show(
    screening, clinician, make_user
):
    other = make_user("other", "clinician")
    third = named(make_user, "third", Role.CLINICIAN, "Jo", "Third")
    reviews.claim_screening(screening_id=screening.pk, user=clinician)  # the page shows this
    reviews.release_claim(screening_id=screening.pk, user=clinician, claimed_by_id=clinician.pk)
    reviews.claim_screening(screening_id=screening.pk, user=third)
    with pytest.raises(IntakeError) as refused:
        reviews.claim_screening(screening_id=screening.pk, user=other, take_over_from=clinician.pk)
    assert str(refused.value).startswith("This screening is now in review by Jo Third (since ")
    assert str(refused.value).endswith("not by clinician as your page showed. Nothing was changed.")
    assert Screening.objects.get(pk=screening.pk).claimed_by == third


def test_a_release_never_releases_a_claim_the_page_did_not_show(
    screening, clinician, clinic_admin, make_user
):
    third = named(make_user, "third", Role.CLINICIAN, "Jo", "Third")
    reviews.claim_screening(screening_id=screening.pk, user=clinician)  # the admin's page
    reviews.release_claim(screening_id=screening.pk, user=clinician, claimed_by_id=clinician.pk)
    reviews.claim_screening(screening_id=screening.pk, user=third)
    with pytest.raises(IntakeError, match="now in review by Jo Third .* Nothing was changed"):
        reviews.release_claim(
            screening_id=screening.pk, user=clinic_admin, claimed_by_id=clinician.pk
        )
    assert Screening.objects.get(pk=screening.pk).claimed_by == third
    assert actions().count("intake.screening.released") == 1


def test_intake_staff_cannot_claim(screening, staff_user):
    with pytest.raises(IntakeError, match="permission"):
        reviews.claim_screening(screening_id=screening.pk, user=staff_user)


# -- sign ----------------------------------------------------------------------


def test_signing_records_the_clinicians_determination_and_locks(
    screening, clinician, determination
):
    review = sign(screening, clinician, determination)
    screening.refresh_from_db()
    assert screening.status == Screening.Status.REVIEWED
    assert screening.is_locked
    assert screening.claimed_by == clinician
    assert review.determination == "More information needed"
    assert review.acknowledged_rule_ids == ["BP-02", "SUI-01"]
    assert actions() == ["intake.review.signed"]
    event = AuditEvent.objects.get()
    assert event.object_id == str(screening.pk)
    assert event.detail["review"] == review.pk


def test_signing_needs_the_signers_own_password(screening, clinician, determination):
    with pytest.raises(IntakeError, match="password"):
        sign(screening, clinician, determination, password="wrong-password")
    assert not Review.objects.exists()
    # Audited as a failed sign-in even outside a request (kept: not in the service's transaction).
    assert actions() == ["intake.auth.login_failed"]
    assert AuditEvent.objects.get().detail == {"username": "clinician", "retyped_for": "signature"}


@pytest.mark.parametrize("acknowledged", [[], ["SUI-01"], ["BP-02"], ["BP-01", "AGE-02"]])
def test_each_review_and_urgent_flag_must_be_acknowledged(
    screening, clinician, determination, acknowledged
):
    with pytest.raises(IntakeError, match="Acknowledge"):
        sign(screening, clinician, determination, acknowledged_rule_ids=acknowledged)
    assert not Review.objects.exists()


def test_caution_and_info_flags_need_no_acknowledgement(staff_user, clinician, determination):
    quiet = flagged_screening(staff_user, ["BP-01", "AGE-02"])
    review = sign(quiet, clinician, determination, acknowledged_rule_ids=[])
    assert review.acknowledged_rule_ids == []


def test_an_inactive_determination_cannot_be_recorded(screening, clinician, determination):
    determination.active = False
    determination.save()
    with pytest.raises(IntakeError, match="determination"):
        sign(screening, clinician, determination)


def test_a_note_is_required(screening, clinician, determination):
    with pytest.raises(IntakeError, match="note"):
        sign(screening, clinician, determination, note="   ")


def test_a_second_signature_names_the_first_signer(screening, clinician, make_user, determination):
    other = make_user("second", "clinician")
    other.first_name, other.last_name = "Ada", "Second"
    other.save()
    clinician.first_name, clinician.last_name = "Sam", "First"
    clinician.save()
    sign(screening, clinician, determination)
    with pytest.raises(IntakeError, match="already signed by Sam First"):
        sign(screening, other, determination, note="My own note")
    assert Review.objects.count() == 1
    assert actions() == ["intake.review.signed"]


def test_signing_counts_the_reviews_the_form_showed(
    screening, clinician, clinic_admin, make_user, determination
):
    other = make_user("second", "clinician")
    review = sign(screening, clinician, determination, reviews_seen=0)
    unlock(screening, clinic_admin, review)
    reviews.release_claim(screening_id=screening.pk, user=clinic_admin, claimed_by_id=clinician.pk)
    with pytest.raises(IntakeError, match="Since you opened this form, .* signed a review at"):
        sign(screening, other, determination, reviews_seen=0)
    assert Review.objects.count() == 1
    assert sign(screening, other, determination, reviews_seen=1).clinician == other


def test_a_form_counting_more_reviews_than_exist_is_refused_not_a_crash(
    screening, clinician, determination
):
    # A forged or corrupted count: no page ever showed a review that does not exist.
    with pytest.raises(IntakeError, match="does not match the screening as it stands"):
        sign(screening, clinician, determination, reviews_seen=3)
    assert Review.objects.count() == 0
    assert sign(screening, clinician, determination, reviews_seen=0).clinician == clinician


def test_a_screening_in_review_by_another_clinician_must_be_taken_over(
    screening, clinician, make_user, determination
):
    other = make_user("other", "clinician")
    reviews.claim_screening(screening_id=screening.pk, user=other)
    with pytest.raises(IntakeError, match="Take it over"):
        sign(screening, clinician, determination)


def test_intake_staff_cannot_sign(screening, staff_user, determination):
    with pytest.raises(IntakeError, match="permission"):
        sign(screening, staff_user, determination)


@pytest.mark.django_db(transaction=True)
def test_two_clinicians_signing_at_once_one_succeeds(make_user):
    if connection.vendor != "postgresql":
        pytest.skip("row locks across threads are exercised on PostgreSQL (CI)")
    staff_user = make_user("frontdesk", "intake_staff")
    first = make_user("first", "clinician")
    second = make_user("second", "clinician")
    target = flagged_screening(staff_user, ["BP-02"])
    determination = Determination.objects.first()
    outcomes = {}

    def attempt(user):
        try:
            sign(target, user, determination, acknowledged_rule_ids=["BP-02"])
            outcomes[user.username] = "signed"
        except IntakeError as exc:
            outcomes[user.username] = str(exc)

    at_once(attempt, [(first,), (second,)])
    assert sorted(outcomes.values(), key=lambda v: v != "signed")[0] == "signed"
    loser = [text for text in outcomes.values() if text != "signed"]
    assert len(loser) == 1 and "already signed by" in loser[0]
    assert Review.objects.filter(screening=target).count() == 1


# -- addenda and unlock ----------------------------------------------------------


def test_addenda_are_appended_after_signing(screening, clinician, determination):
    with pytest.raises(IntakeError, match="after a review is signed"):
        reviews.add_addendum(
            screening_id=screening.pk,
            user=clinician,
            review_id=0,
            text="Early",
            password=PASSWORD,
        )
    review = sign(screening, clinician, determination)
    addendum = amend(screening, clinician, review.pk, "Spoke to GP.")
    screening.refresh_from_db()
    assert screening.status == Screening.Status.AMENDED
    assert list(screening.addenda.all()) == [addendum]
    review.refresh_from_db()
    assert review.note == "Discussed with patient; plan documented." and not review.is_void
    assert actions() == ["intake.review.signed", "intake.addendum.signed"]


def test_the_same_addendum_form_sent_twice_signs_one_addendum(screening, clinician, determination):
    review = sign(screening, clinician, determination)

    def send(text, token="form-1"):
        return amend(screening, clinician, review.pk, text, form_token=token)

    first = send("Spoke to GP.")
    assert send(" Spoke to GP. ") == first  # the resent copy, same text
    assert actions().count("intake.addendum.signed") == 1
    with pytest.raises(IntakeError, match="already signed"):
        send("Another note, after Back.")  # same form, new text: refused, not dropped
    with pytest.raises(IntakeError, match="You already signed this addendum at"):
        send("Spoke to GP.", token="form-3")  # same text from a reloaded form ("Back")
    second = send("Another note.", token="form-2")
    assert list(screening.addenda.all()) == [first, second]
    assert [a.text for a in Addendum.objects.all()] == ["Spoke to GP.", "Another note."]


def test_another_clinician_cannot_reuse_an_addendum_form(
    screening, clinician, make_user, determination
):
    review = sign(screening, clinician, determination)
    other = make_user("other", "clinician")
    kwargs = {
        "screening_id": screening.pk,
        "review_id": review.pk,
        "text": "Same.",
        "password": PASSWORD,
    }
    reviews.add_addendum(user=clinician, form_token="form-1", **kwargs)
    with pytest.raises(IntakeError, match="already signed"):
        reviews.add_addendum(user=other, form_token="form-1", **kwargs)
    assert screening.addenda.count() == 1


def test_the_database_refuses_two_addenda_from_one_form(screening, clinician, determination):
    sign(screening, clinician, determination)
    Addendum.objects.create(screening=screening, author=clinician, text="a", form_token="t")
    Addendum.objects.create(screening=screening, author=clinician, text="b")  # no token: fine
    Addendum.objects.create(screening=screening, author=clinician, text="c")
    with pytest.raises(IntegrityError), transaction.atomic():
        Addendum.objects.create(screening=screening, author=clinician, text="d", form_token="t")


@pytest.mark.django_db(transaction=True)
def test_one_addendum_form_sent_twice_at_once_signs_one(make_user):
    if connection.vendor != "postgresql":
        pytest.skip("row locks across threads are exercised on PostgreSQL (CI)")
    staff_user = make_user("frontdesk", "intake_staff")
    clinician = make_user("doc", "clinician")
    target = flagged_screening(staff_user, ["BP-02"])
    review = sign(target, clinician, Determination.objects.first(), acknowledged_rule_ids=["BP-02"])
    outcomes = []

    def attempt():
        addendum = reviews.add_addendum(
            screening_id=target.pk,
            user=clinician,
            review_id=review.pk,
            text="GP letter received.",
            password=PASSWORD,
            form_token="double-click",
        )
        outcomes.append(addendum.pk)

    at_once(attempt, [(), ()])
    assert len(outcomes) == 2 and len(set(outcomes)) == 1
    assert Addendum.objects.filter(screening=target).count() == 1


def test_an_addendum_needs_a_signature(screening, clinician, determination):
    review = sign(screening, clinician, determination)
    with pytest.raises(IntakeError, match="password"):
        reviews.add_addendum(
            screening_id=screening.pk, user=clinician, review_id=review.pk, text="x", password=""
        )


def test_an_addendum_written_about_a_review_voided_since_is_refused(
    screening, clinician, clinic_admin, make_user, determination
):
    second = named(make_user, "dr-b", Role.CLINICIAN, "Bea", "Second")
    shown = sign(screening, clinician, determination)  # the addendum form shows this one
    unlock(screening, clinic_admin, shown)
    kwargs = {"screening_id": screening.pk, "review_id": shown.pk, "password": PASSWORD}
    with pytest.raises(IntakeError, match="was voided by .* Nothing was changed"):
        reviews.add_addendum(user=clinician, text="About the first review.", **kwargs)
    reviews.claim_screening(screening_id=screening.pk, user=second, take_over_from=clinician.pk)
    new = sign(screening, second, determination)
    with pytest.raises(IntakeError, match=r"The signed review now is by Bea Second \(dr-b\) at "):
        reviews.add_addendum(user=clinician, text="About the first review.", **kwargs)
    assert not screening.addenda.exists()
    reviews.add_addendum(user=clinician, text="Read Bea's.", **{**kwargs, "review_id": new.pk})
    assert screening.addenda.count() == 1


def test_only_a_clinic_admin_unlocks_and_must_give_a_reason(
    screening, clinician, clinic_admin, determination
):
    review = sign(screening, clinician, determination)
    with pytest.raises(IntakeError, match="permission"):
        unlock(screening, clinician, review, reason="typo")
    with pytest.raises(IntakeError, match="reason"):
        unlock(screening, clinic_admin, review, reason=" ")
    unlock(screening, clinic_admin, review, reason="Wrong patient chart")
    screening.refresh_from_db()
    review.refresh_from_db()
    assert screening.status == Screening.Status.IN_REVIEW
    assert screening.claimed_by == clinician
    assert review.is_void and review.voided_by == clinic_admin
    assert review.void_reason == "Wrong patient chart"
    assert reviews.current_review(screening) is None
    assert actions() == ["intake.review.signed", "intake.screening.unlocked"]
    # Re-signing after an unlock keeps the void review in the history.
    sign(screening, clinician, determination)
    assert screening.reviews.count() == 2


def test_unlocking_an_unsigned_screening_is_refused(screening, clinic_admin):
    with pytest.raises(IntakeError, match="not signed"):
        reviews.unlock_screening(
            screening_id=screening.pk, user=clinic_admin, review_id=1, reason="x"
        )


def named(make_user, username, role, first, last):
    user = make_user(username, role)
    user.first_name, user.last_name = first, last
    user.save()
    return user


def test_an_old_unlock_form_never_voids_a_review_signed_since(
    screening, make_user, clinic_admin, determination
):
    first = named(make_user, "dr-a", Role.CLINICIAN, "Alex", "First")
    second = named(make_user, "dr-b", Role.CLINICIAN, "Bea", "Second")
    other_admin = named(make_user, "admin-2", Role.CLINIC_ADMIN, "Kim", "Other")
    shown = sign(screening, first, determination)  # the old unlock form shows this one
    unlock(screening, other_admin, shown, reason="Wrong chart")
    reviews.claim_screening(screening_id=screening.pk, user=second, take_over_from=first.pk)
    new = sign(screening, second, determination)
    with pytest.raises(IntakeError) as refused:
        unlock(screening, clinic_admin, shown, reason="Alex's review was on the wrong chart")
    message = str(refused.value)
    assert message.startswith("The review you opened, by Alex First (dr-a) at ")
    assert ", was voided by Kim Other (admin-2) at " in message
    assert "The signed review now is by Bea Second (dr-b) at " in message
    assert message.endswith("Nothing was changed.")
    new.refresh_from_db()
    assert not new.is_void
    shown.refresh_from_db()
    assert shown.void_reason == "Wrong chart" and shown.voided_by == other_admin
    assert Screening.objects.get(pk=screening.pk).status == Screening.Status.REVIEWED
    assert actions().count("intake.screening.unlocked") == 1
    # The form about Bea's review voids exactly that one.
    unlock(screening, clinic_admin, new, reason="Dose typo")
    new.refresh_from_db()
    assert new.void_reason == "Dose typo"
    event = AuditEvent.objects.filter(action="intake.screening.unlocked").order_by("id").last()
    assert event.detail == {"voided_reviews": [new.pk]}


def test_an_unlock_form_of_a_review_already_voided_is_refused(
    screening, clinician, clinic_admin, determination
):
    review = sign(screening, clinician, determination)
    unlock(screening, clinic_admin, review, reason="Wrong chart")
    with pytest.raises(IntakeError, match=r"was voided by .* Nothing was changed\.$"):
        unlock(screening, clinic_admin, review, reason="Wrong chart")
    review.refresh_from_db()
    assert review.void_reason == "Wrong chart"


def test_an_unlock_form_cannot_name_another_screenings_review(
    screening, staff_user, clinician, clinic_admin, determination
):
    sign(screening, clinician, determination)
    elsewhere = sign(flagged_screening(staff_user, ["BP-02"]), clinician, determination)
    with pytest.raises(IntakeError, match="not on this screening"):
        unlock(screening, clinic_admin, elsewhere, reason="x")
    assert not Review.objects.filter(voided_at__isnull=False).exists()


def test_workflow_changes_never_touch_the_snapshot(screening, clinician, determination):
    before = services.snapshot_sha256(services.snapshot_document(screening))
    sign(screening, clinician, determination)
    screening.refresh_from_db()
    assert services.snapshot_sha256(services.snapshot_document(screening)) == before


# -- thresholds --------------------------------------------------------------------


def test_saving_thresholds_creates_a_new_version_with_audited_changes(clinic_admin, screening):
    values = dict(thresholds.DEFAULTS, hr_review=125, spo2_caution=93)
    first = reviews.save_thresholds(
        values=values, user=clinic_admin, based_on_version=0, note="Protocol update"
    )
    assert first.version == 1
    second = reviews.save_thresholds(
        values=dict(values, hr_review=128), user=clinic_admin, based_on_version=1, note="Again"
    )
    assert second.version == 2
    assert ThresholdSet.objects.get(version=1).values["hr_review"] == 125
    assert services.current_thresholds() == (2, dict(values, hr_review=128))
    events = AuditEvent.objects.filter(action="intake.thresholds.changed").order_by("id")
    assert events[0].detail["changes"] == {
        "hr_review": ["130", "125"],
        "spo2_caution": ["94", "93"],
    }
    assert events[1].detail["changes"] == {"hr_review": ["125", "128"]}
    screening.refresh_from_db()
    assert screening.thresholds["hr_review"] == 130


def test_thresholds_saved_on_an_older_version_are_refused_naming_the_newer_one(
    clinic_admin, make_user
):
    other = make_user("other-admin", Role.CLINIC_ADMIN)
    other.first_name, other.last_name = "Kim", "Other"
    other.save()
    # Both open the form on version 0; the other admin saves first.
    reviews.save_thresholds(
        values=dict(thresholds.DEFAULTS, spo2_caution=92), user=other, based_on_version=0
    )
    with pytest.raises(reviews.ThresholdsChangedError) as refused:
        reviews.save_thresholds(
            values=dict(thresholds.DEFAULTS, phq9_severe=19),
            user=clinic_admin,
            based_on_version=0,
        )
    message = str(refused.value)
    assert message.startswith("Version 1 was saved by Kim Other at ")
    assert "Nothing was saved." in message
    assert refused.value.version == 1
    assert refused.value.values["spo2_caution"] == 92
    assert refused.value.base_values == thresholds.DEFAULTS
    assert ThresholdSet.objects.count() == 1
    # Saved again on version 1, both changes are in force.
    saved = reviews.save_thresholds(
        values=dict(thresholds.DEFAULTS, spo2_caution=92, phq9_severe=19),
        user=clinic_admin,
        based_on_version=1,
    )
    assert saved.version == 2
    assert services.current_thresholds()[1]["spo2_caution"] == 92
    event = AuditEvent.objects.filter(action="intake.thresholds.changed").order_by("id").last()
    assert event.detail["from_version"] == 1
    assert event.detail["changes"] == {"phq9_severe": ["20", "19"]}


def test_thresholds_based_on_a_version_that_does_not_exist_are_refused(clinic_admin):
    with pytest.raises(IntakeError, match="version 4 does not exist"):
        reviews.save_thresholds(
            values=dict(thresholds.DEFAULTS, phq9_severe=19),
            user=clinic_admin,
            based_on_version=4,
        )
    assert not ThresholdSet.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("existing", [0, 1], ids=["first version", "later version"])
def test_two_threshold_editors_saving_at_once_one_is_refused(make_user, existing):
    if connection.vendor != "postgresql":
        pytest.skip("row locks across threads are exercised on PostgreSQL (CI)")
    first, second = make_user("a1", Role.CLINIC_ADMIN), make_user("a2", Role.CLINIC_ADMIN)
    if existing:
        ThresholdSet.objects.create(version=1, values=thresholds.encode(thresholds.DEFAULTS))
    outcomes = []

    def save(user, name, value):
        try:
            reviews.save_thresholds(
                values=dict(thresholds.DEFAULTS, **{name: value}),
                user=user,
                based_on_version=existing,
            )
            outcomes.append("saved")
        except IntakeError as exc:
            outcomes.append(type(exc).__name__)

    at_once(save, [(first, "phq9_severe", 19), (second, "spo2_caution", 90)])
    assert sorted(outcomes) == ["ThresholdsChangedError", "saved"]
    assert ThresholdSet.objects.order_by("-version").first().version == existing + 1


def test_inconsistent_thresholds_are_refused(clinic_admin):
    with pytest.raises(IntakeError, match="hr_review must be greater than hr_caution"):
        reviews.save_thresholds(
            values=dict(thresholds.DEFAULTS, hr_review=90),
            user=clinic_admin,
            based_on_version=0,
            note="x",
        )
    assert not ThresholdSet.objects.exists()


def test_unchanged_thresholds_are_not_a_new_version(clinic_admin):
    with pytest.raises(IntakeError, match="No threshold"):
        reviews.save_thresholds(
            values=dict(thresholds.DEFAULTS), user=clinic_admin, based_on_version=0
        )


def test_clinicians_cannot_change_thresholds(clinician):
    with pytest.raises(IntakeError, match="permission"):
        reviews.save_thresholds(
            values=dict(thresholds.DEFAULTS, hr_review=125), user=clinician, based_on_version=0
        )


def test_decimal_thresholds_round_trip(clinic_admin):
    from decimal import Decimal

    reviews.save_thresholds(
        values=dict(thresholds.DEFAULTS, bmi_info=Decimal("35.5")),
        user=clinic_admin,
        based_on_version=0,
    )
    assert services.current_thresholds()[1]["bmi_info"] == Decimal("35.5")


# -- export --------------------------------------------------------------------------


def test_export_lists_ids_flags_and_review_without_answers_or_names(
    screening, staff_user, clinician, clinic_admin, determination
):
    other = flagged_screening(staff_user, [], first_name="Zed", last_name="Quiet", mrn="MRN-77")
    sign(screening, clinician, determination)
    text = reviews.export_screenings_csv(screening_ids=[screening.pk, other.pk], user=clinic_admin)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == reviews.export_columns(pdf.clinic_tz())
    assert rows[0]["screening_id"] == str(screening.pk)
    assert rows[0]["flags"] == "SUI-01:review+urgent BP-02:review BP-01:caution AGE-02:info"
    assert rows[0]["determination"] == "More information needed"
    assert rows[0]["reviewer"] == "clinician"
    assert rows[0]["status"] == "reviewed"
    assert rows[1]["flags"] == "" and rows[1]["reviewer"] == ""
    for forbidden in ("Rivera", "Alex", "Zed", "Quiet", "MRN-", "depression", "Discussed"):
        assert forbidden not in text
    event = AuditEvent.objects.get(action="intake.screening.exported")
    assert event.detail == {"count": 2, "ids": [screening.pk, other.pk]}


@override_settings(TIME_ZONE="America/New_York")
def test_export_times_are_the_clinics_each_with_its_own_utc_offset(
    staff_user, clinician, clinic_admin, determination
):
    utc = dt.UTC
    # Either side of the spring-forward hour (2026-03-08, 02:00 EST becomes 03:00 EDT),
    # and a screening submitted in winter but signed in summer.
    before = flagged_screening(
        staff_user, [], submitted_at=dt.datetime(2026, 3, 8, 6, 59, 59, tzinfo=utc)
    )
    after = flagged_screening(
        staff_user, [], submitted_at=dt.datetime(2026, 3, 8, 7, 0, tzinfo=utc)
    )
    winter = flagged_screening(
        staff_user, [], submitted_at=dt.datetime(2026, 1, 15, 14, 30, 0, 123456, tzinfo=utc)
    )
    review = sign(winter, clinician, determination, acknowledged_rule_ids=[])
    Review.objects.filter(pk=review.pk).update(
        signed_at=dt.datetime(2026, 7, 1, 16, 45, tzinfo=utc)
    )
    text = reviews.export_screenings_csv(
        screening_ids=[before.pk, after.pk, winter.pk], user=clinic_admin
    )
    header, *rows = list(csv.reader(io.StringIO(text)))
    submitted = "submitted_at (clinic time: America/New_York; ISO 8601 with UTC offset)"
    signed = "signed_at (clinic time: America/New_York; ISO 8601 with UTC offset)"
    assert header[1] == submitted and header[7] == signed
    by_id = {int(row[0]): row for row in rows}
    assert by_id[before.pk][1] == "2026-03-08T01:59:59-05:00"
    assert by_id[after.pk][1] == "2026-03-08T03:00:00-04:00"
    assert by_id[winter.pk][1] == "2026-01-15T09:30:00-05:00"
    assert by_id[winter.pk][7] == "2026-07-01T12:45:00-04:00"
    assert by_id[before.pk][7] == ""
    # The same moments as stored.
    assert dt.datetime.fromisoformat(by_id[winter.pk][7]) == dt.datetime(
        2026, 7, 1, 16, 45, tzinfo=utc
    )


def test_clinicians_cannot_export(screening, clinician):
    with pytest.raises(IntakeError, match="permission"):
        reviews.export_screenings_csv(screening_ids=[screening.pk], user=clinician)
    assert not AuditEvent.objects.exists()


# ---------------------------------------------------------------------------
# Length of free text


def test_a_review_note_longer_than_the_maximum_is_refused_and_nothing_stored(
    screening, clinician, determination
):
    too_long = "x" * (reviews.NOTE_MAX_LENGTH + 1)
    with pytest.raises(IntakeError, match="at most 10,000 characters; it has 10,001"):
        sign(screening, clinician, determination, note=too_long)
    assert not Review.objects.exists()
    screening.refresh_from_db()
    assert screening.status == Screening.Status.SUBMITTED
    # Spaces around it are not counted, as they are not kept.
    review = sign(screening, clinician, determination, note=f"  {'x' * reviews.NOTE_MAX_LENGTH}\n")
    assert len(review.note) == reviews.NOTE_MAX_LENGTH


def test_an_addendum_longer_than_the_maximum_is_refused_and_nothing_stored(
    screening, clinician, determination
):
    review = sign(screening, clinician, determination)

    def addendum(text):
        return amend(screening, clinician, review.pk, text)

    with pytest.raises(IntakeError, match="The addendum is too long"):
        addendum("y" * (reviews.NOTE_MAX_LENGTH + 1))
    assert not Addendum.objects.exists()
    assert len(addendum("y" * reviews.NOTE_MAX_LENGTH).text) == reviews.NOTE_MAX_LENGTH


def test_an_unlock_reason_longer_than_the_maximum_is_refused_and_nothing_voided(
    screening, clinician, clinic_admin, determination
):
    review = sign(screening, clinician, determination)
    with pytest.raises(IntakeError, match="at most 2,000 characters; it has 2,001"):
        unlock(screening, clinic_admin, review, reason="r" * (reviews.REASON_MAX_LENGTH + 1))
    review.refresh_from_db()
    assert not review.is_void
    unlock(screening, clinic_admin, review, reason="r" * reviews.REASON_MAX_LENGTH)
    review.refresh_from_db()
    assert len(review.void_reason) == reviews.REASON_MAX_LENGTH


def test_a_threshold_change_reason_longer_than_the_maximum_is_refused(clinic_admin):
    values = dict(thresholds.DEFAULTS, hr_review=125)
    with pytest.raises(IntakeError, match="The reason for the change is too long"):
        reviews.save_thresholds(
            values=values,
            user=clinic_admin,
            based_on_version=0,
            note="n" * (reviews.REASON_MAX_LENGTH + 1),
        )
    assert not ThresholdSet.objects.exists()
    saved = reviews.save_thresholds(
        values=values, user=clinic_admin, based_on_version=0, note="n" * reviews.REASON_MAX_LENGTH
    )
    assert len(saved.note) == reviews.REASON_MAX_LENGTH


def test_records_keep_each_signers_name_as_it_was_when_they_signed(
    client, make_user, determination
):
    staff = named(make_user, "sue", Role.INTAKE_STAFF, "Sue", "Submitter")
    first = named(make_user, "dr-a", Role.CLINICIAN, "Alex", "First")
    admin = named(make_user, "admin-2", Role.CLINIC_ADMIN, "Kim", "Other")
    screening = flagged_screening(staff, ["SUI-01", "BP-02"])
    voided = sign(screening, first, determination)
    unlock(screening, admin, voided)
    sign(screening, first, determination)
    review_id = reviews.current_review(screening).pk
    amend(screening, first, review_id, "GP letter in.")
    # Every account is renamed afterwards: what was signed keeps the names it was signed with.
    for user in (staff, first, admin):
        user.first_name, user.last_name = "Mallory", "Imposter"
        user.save()
    screening.refresh_from_db()
    context = pdf.summary_context(screening)
    assert context["submitted_by"] == "Sue Submitter (sue)"
    assert [(r.clinician, r.voided_by) for r in context["reviews"]] == [
        ("Alex First (dr-a)", "Kim Other (admin-2)"),
        ("Alex First (dr-a)", ""),
    ]
    assert [a.author for a in context["addenda"]] == ["Alex First (dr-a)"]
    client.force_login(staff)
    staff_page = client.get(screening.get_absolute_url()).content.decode()
    client.force_login(admin)
    panel = client.get(reverse("admin:intake_screening_change", args=[screening.pk]))
    for page in (staff_page, unescape(panel.content.decode())):
        assert "Alex First (dr-a)" in page
        assert "Imposter" not in page  # (the panel greets the signed-in admin by first name)


def test_the_migration_names_earlier_records_signers_from_their_accounts(
    screening, clinician, clinic_admin, determination
):
    from django.apps import apps

    copy_signer_names = importlib.import_module(
        "intake.migrations.0007_signer_names"
    ).copy_signer_names
    review = sign(screening, clinician, determination)
    unlock(screening, clinic_admin, review)
    clinician.first_name, clinician.last_name = "Dana", "Reyes"
    clinician.save()
    # As rows stood before the migration: no names of their own.
    Screening.objects.update(submitted_by_name="")
    Review.objects.update(clinician_name="", voided_by_name="")
    copy_signer_names(apps, None)
    screening.refresh_from_db()
    review.refresh_from_db()
    assert screening.submitted_by_name == screening.submitted_by.get_username()
    assert review.clinician_name == f"Dana Reyes ({clinician.get_username()})"
    assert review.voided_by_name == clinic_admin.get_username()
