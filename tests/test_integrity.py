import hashlib
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from intake import services
from intake.models import AuditEvent, SummaryDocument
from tests.factories import make_screening

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n% a stored summary\n%%EOF\n"


def run_verify():
    """Run verify_integrity; return ``(ok, stdout, stderr)``."""
    import io

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_integrity", stdout=out, stderr=err)
    except CommandError as exc:
        err.write(str(exc))
        return False, out.getvalue(), err.getvalue()
    return True, out.getvalue(), err.getvalue()


def store_pdf(screening, data=PDF):
    return SummaryDocument.objects.create(
        screening=screening,
        version=1,
        reason=SummaryDocument.Reason.SUBMITTED,
        pdf=data,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def raw_update(table, column, value, pk, *, json_value=False):
    placeholder = "%s"
    if json_value and connection.vendor == "postgresql":
        placeholder = "CAST(%s AS jsonb)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = {placeholder} WHERE id = %s",
            [value, pk],
        )


@pytest.fixture
def screening(staff_user):
    return make_screening(staff_user)


def test_empty_database_verifies():
    ok, out, _ = run_verify()
    assert ok
    assert "Checked 0 screening snapshots and 0 PDF summaries: 0 mismatches." in out


def test_untouched_screening_and_pdf_verify(screening):
    store_pdf(screening)
    ok, out, err = run_verify()
    assert ok, err
    assert "Checked 1 screening snapshots and 1 PDF summaries: 0 mismatches." in out
    event = AuditEvent.objects.filter(action="intake.integrity.checked").get()
    assert event.detail == {"screenings": 1, "documents": 1, "mismatches": 0}


def test_tampered_answers_are_caught_by_id_without_patient_data(screening, staff_user):
    untouched = make_screening(staff_user, first_name="Jordan")
    answers = dict(screening.answers)
    answers["vit_sbp"] = 119
    raw_update("intake_screening", "answers", json.dumps(answers), screening.pk, json_value=True)

    ok, _, err = run_verify()

    assert not ok
    assert f"Screening {screening.pk}: snapshot does not match" in err
    assert f"Screening {untouched.pk}:" not in err
    assert "1 mismatches" in err
    for patient_value in ("Alex", "Rivera", "MRN-1001", "1985"):
        assert patient_value not in err


def test_tampered_answers_with_recomputed_digest_are_caught_by_the_audit_trail(screening):
    answers = dict(screening.answers)
    answers["vit_sbp"] = 119
    raw_update("intake_screening", "answers", json.dumps(answers), screening.pk, json_value=True)
    screening.refresh_from_db()
    forged = services.snapshot_sha256(services.snapshot_document(screening))
    raw_update("intake_screening", "snapshot_sha256", forged, screening.pk)

    ok, _, err = run_verify()

    assert not ok
    assert f"Screening {screening.pk}: stored SHA-256 differs from the one audited" in err


def test_tampered_flag_is_caught(staff_user):
    flagged = make_screening(staff_user, alg_ketamine="yes")
    flag = flagged.flags.first()
    assert flag is not None
    raw_update("intake_flag", "message", "Something else.", flag.pk)

    ok, _, err = run_verify()

    assert not ok
    assert f"Screening {flagged.pk}: snapshot does not match" in err


def test_tampered_pdf_bytes_are_caught(screening):
    document = store_pdf(screening)
    raw_update("intake_summarydocument", "pdf", PDF.replace(b"stored", b"forged"), document.pk)

    ok, _, err = run_verify()

    assert not ok
    assert (
        f"Summary document {document.pk} (screening {screening.pk}, version 1): "
        "PDF does not match" in err
    )
