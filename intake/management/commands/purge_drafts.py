import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from intake import audit
from intake.models import Draft


class Command(BaseCommand):
    help = "Delete unsubmitted drafts last saved more than --days days ago."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Age in days after the last save (default: DRAFT_MAX_AGE_DAYS).",
        )

    def handle(self, *args, days=None, **options):
        days = settings.DRAFT_MAX_AGE_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be zero or more.")
        cutoff = timezone.now() - dt.timedelta(days=days)
        deleted = 0
        with transaction.atomic():
            for draft in Draft.objects.select_for_update().filter(
                screening__isnull=True, updated_at__lt=cutoff
            ):
                # The audit row names the draft and its owner only: no patient data.
                audit.record(
                    action="intake.draft.purged",
                    obj=draft,
                    detail={"created_by": draft.created_by_id, "max_age_days": days},
                )
                draft.delete()
                deleted += 1
        self.stdout.write(f"Deleted {deleted} draft(s) older than {days} day(s).")
