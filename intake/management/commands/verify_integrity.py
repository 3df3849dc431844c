import hashlib

from django.core.management.base import BaseCommand, CommandError

from intake import audit, services
from intake.models import AuditEvent, Screening, SummaryDocument

CHUNK = 500


def screening_mismatches():
    """Yield ``(checked, problem)`` for every screening; ``problem`` is None when it verifies."""
    audited = {
        object_id: detail.get("sha256")
        for object_id, detail in AuditEvent.objects.filter(
            action="intake.screening.submitted", object_type="screening"
        ).values_list("object_id", "detail")
        if isinstance(detail, dict)
    }
    screenings = Screening.objects.order_by("pk").prefetch_related("flags")
    for screening in screenings.iterator(chunk_size=CHUNK):
        digest = services.snapshot_sha256(services.snapshot_document(screening))
        if digest != screening.snapshot_sha256:
            yield f"Screening {screening.pk}: snapshot does not match its stored SHA-256."
        elif audited.get(str(screening.pk), digest) != digest:
            # Answers and stored digest changed together; the append-only audit row did not.
            yield (
                f"Screening {screening.pk}: stored SHA-256 differs from the one audited "
                "at submission."
            )
        else:
            yield None


def document_mismatches():
    """Yield a problem line (or None) for every stored PDF summary."""
    rows = SummaryDocument.objects.order_by("pk").values_list(
        "pk", "screening_id", "version", "sha256", "pdf"
    )
    for pk, screening_id, version, stored, pdf in rows.iterator(chunk_size=CHUNK):
        if hashlib.sha256(bytes(pdf)).hexdigest() != stored:
            yield (
                f"Summary document {pk} (screening {screening_id}, version {version}): "
                "PDF does not match its stored SHA-256."
            )
        else:
            yield None


class Command(BaseCommand):
    help = (
        "Recompute the SHA-256 of every screening snapshot and every stored PDF summary; "
        "report mismatches by id and exit non-zero if there are any."
    )

    def handle(self, *args, **options):
        problems = []
        counts = {}
        for kind, results in (
            ("screenings", screening_mismatches()),
            ("documents", document_mismatches()),
        ):
            counts[kind] = 0
            for problem in results:
                counts[kind] += 1
                if problem is not None:
                    problems.append(problem)
                    self.stderr.write(problem)

        audit.record(
            action="intake.integrity.checked",
            detail={**counts, "mismatches": len(problems)},
        )
        summary = (
            f"Checked {counts['screenings']} screening snapshots and "
            f"{counts['documents']} PDF summaries: {len(problems)} mismatches."
        )
        if problems:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
