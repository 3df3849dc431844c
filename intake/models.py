"""Data model: drafts in progress, frozen screenings, flags, reviews, audit.

A submitted ``Screening`` is a snapshot: its answers, derived values,
thresholds and flags never change after submission. Only its workflow fields
(status, claim) move, and corrections are ``Addendum`` rows.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    INTAKE_STAFF = "intake_staff", _("Intake staff")
    CLINICIAN = "clinician", _("Clinician")
    CLINIC_ADMIN = "clinic_admin", _("Clinic admin")


class Severity(models.TextChoices):
    REVIEW = "review", _("Review")
    CAUTION = "caution", _("Caution")
    INFO = "info", _("Info")


class ImmutableRecordError(Exception):
    """Raised when code tries to change a frozen field of a submitted record."""


# Long enough for Django's longest first name, last name and username together.
SIGNER_NAME_MAX_LENGTH = 500


def signer_name(user):
    """Return how a record names the user who submitted or signed it.

    "Full Name (username)", or the username alone. Copied onto the record at
    that moment, so renaming the account later does not rename the signer.
    """
    if user is None:
        return ""
    full_name = user.get_full_name().strip()
    return f"{full_name} ({user.get_username()})" if full_name else user.get_username()


def signer_name_field():
    return models.CharField(max_length=SIGNER_NAME_MAX_LENGTH, blank=True, editable=False)


class Draft(models.Model):
    """A screening in progress, owned by the staff member who started it."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="drafts"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # formtools storage data (current step, raw step data, extra data), JSON-safe.
    wizard_state = models.JSONField(default=dict, blank=True)
    # Canonical answers so far in the spec's encoding, JSON-encoded by instrument.encode_answers.
    answers = models.JSONField(default=dict, blank=True)
    last_step = models.CharField(max_length=40, blank=True)
    screening = models.OneToOneField(
        "Screening", on_delete=models.PROTECT, null=True, blank=True, related_name="draft"
    )

    class Meta:
        ordering = ["-updated_at"]
        permissions = [("conduct_screening", "Can conduct intake screenings")]

    def __str__(self):
        return f"Draft {self.pk}"

    @property
    def is_submitted(self):
        return self.screening_id is not None


class Screening(models.Model):
    """A submitted screening: the frozen snapshot a clinician reviews."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("Awaiting clinician review")
        IN_REVIEW = "in_review", _("In review")
        REVIEWED = "reviewed", _("Reviewed")
        AMENDED = "amended", _("Reviewed, with addendum")

    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submitted_screenings"
    )
    submitted_at = models.DateTimeField(db_index=True)
    # The submitter as named at submission (``signer_name``).
    submitted_by_name = signer_name_field()
    instrument_version = models.CharField(max_length=20)
    lexicon_version = models.CharField(max_length=20)
    thresholds_version = models.PositiveIntegerField()
    thresholds = models.JSONField()
    answers = models.JSONField()
    derived = models.JSONField()
    snapshot_sha256 = models.CharField(max_length=64)

    # Copied from the answers at submission so the queue can search and sort
    # without decoding snapshots.
    patient_first_name = models.CharField(max_length=100)
    patient_last_name = models.CharField(max_length=100, db_index=True)
    patient_mrn = models.CharField(max_length=50, blank=True, db_index=True)
    patient_date_of_birth = models.DateField()
    urgent_count = models.PositiveSmallIntegerField(default=0)
    review_count = models.PositiveSmallIntegerField(default=0)
    caution_count = models.PositiveSmallIntegerField(default=0)
    info_count = models.PositiveSmallIntegerField(default=0)

    # Workflow: the only fields that change after submission.
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.SUBMITTED, db_index=True
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="claimed_screenings",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # Still to review (the queue's default view). Computed by the database from
    # ``status``, so the queue's filter is one equality that an index serves in
    # order on every database (SQLite uses no partial index for a bound IN list).
    is_open = models.GeneratedField(
        expression=models.Q(status__in=["submitted", "in_review"]),
        output_field=models.BooleanField(),
        db_persist=True,
    )

    WORKFLOW_FIELDS = frozenset({"status", "claimed_by", "claimed_at", "updated_at"})

    class Meta:
        ordering = ["-urgent_count", "-review_count", "submitted_at"]
        indexes = [
            models.Index(
                fields=["-urgent_count", "-review_count", "submitted_at"], name="queue_order"
            ),
            # The queue's default view: what is still to review, in its order.
            models.Index(
                fields=["is_open", "-urgent_count", "-review_count", "submitted_at"],
                name="queue_open_order",
            ),
        ]
        permissions = [
            ("review_screening", "Can sign a clinician review of a screening"),
            ("unlock_screening", "Can unlock a signed screening"),
            ("export_screening", "Can export screenings"),
        ]

    def __str__(self):
        return f"Screening {self.pk}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or set(update_fields) - self.WORKFLOW_FIELDS:
                raise ImmutableRecordError(
                    "A submitted screening is immutable; only its workflow fields may change."
                )
        elif not self.submitted_by_name:
            self.submitted_by_name = signer_name(self.submitted_by)
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("intake:screening", args=[self.pk])

    def delete(self, *args, **kwargs):
        raise ImmutableRecordError("A submitted screening cannot be deleted.")

    @property
    def patient_name(self):
        return f"{self.patient_first_name} {self.patient_last_name}"

    def flag_counts(self):
        """Return ``[(kind, count), ...]`` for urgent, review, caution, info.

        The urgent flag also has review severity; it is counted once, as urgent.
        """
        return [
            ("urgent", self.urgent_count),
            ("review", self.review_count - self.urgent_count),
            ("caution", self.caution_count),
            ("info", self.info_count),
        ]

    @property
    def is_locked(self):
        return self.status in {self.Status.REVIEWED, self.Status.AMENDED}


class Flag(models.Model):
    """One flag raised by the rules at submission, frozen with the screening."""

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="flags")
    position = models.PositiveSmallIntegerField()
    rule_id = models.CharField(max_length=20)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    urgent = models.BooleanField(default=False)
    message = models.TextField()
    basis = models.JSONField(default=list)
    evidence = models.JSONField(default=list)

    class Meta:
        ordering = ["screening", "position"]
        constraints = [
            models.UniqueConstraint(fields=["screening", "rule_id"], name="one_flag_per_rule"),
        ]

    def __str__(self):
        return self.rule_id

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRecordError("Flags are frozen with their screening.")
        super().save(*args, **kwargs)


class Determination(models.Model):
    """A determination the clinic lets clinicians record (the clinician's own decision)."""

    label = models.CharField(max_length=120, unique=True)
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "label"]

    def __str__(self):
        return self.label


class Review(models.Model):
    """A clinician's signed review of a screening."""

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="reviews")
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    # The signer and the voider as named when they signed and voided (``signer_name``).
    clinician_name = signer_name_field()
    determination = models.CharField(max_length=120)
    note = models.TextField()
    acknowledged_rule_ids = models.JSONField(default=list)
    signed_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="voided_reviews",
    )
    void_reason = models.TextField(blank=True)
    voided_by_name = signer_name_field()

    class Meta:
        ordering = ["signed_at"]

    def __str__(self):
        return f"Review of screening {self.screening_id} by {self.clinician}"

    def save(self, *args, **kwargs):
        # Whatever creates or voids a review, the record names its signer and voider
        # as they were named then (the services set both; this covers any other path).
        if self._state.adding and not self.clinician_name:
            self.clinician_name = signer_name(self.clinician)
        if self.voided_by_id is not None and not self.voided_by_name:
            self.voided_by_name = signer_name(self.voided_by)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "voided_by_name"}
        super().save(*args, **kwargs)

    @property
    def is_void(self):
        return self.voided_at is not None


class Addendum(models.Model):
    """A signed correction or note appended to a reviewed screening."""

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="addenda"
    )
    # The author as named when they signed (``signer_name``).
    author_name = signer_name_field()
    text = models.TextField()
    signed_at = models.DateTimeField(default=timezone.now)
    # The random token of the form it was signed from: the same form sent twice
    # (a double click, a resent request) signs one addendum, not two.
    form_token = models.CharField(max_length=64, blank=True, default="", editable=False)

    class Meta:
        ordering = ["signed_at"]
        verbose_name_plural = "addenda"
        constraints = [
            models.UniqueConstraint(
                fields=["screening", "form_token"],
                condition=~models.Q(form_token=""),
                name="addendum_once_per_form",
            ),
        ]

    def __str__(self):
        return f"Addendum to screening {self.screening_id}"

    def save(self, *args, **kwargs):
        if self._state.adding and not self.author_name:
            self.author_name = signer_name(self.author)
        super().save(*args, **kwargs)


class ThresholdSet(models.Model):
    """One version of the clinic's thresholds. The highest version is in force."""

    version = models.PositiveIntegerField(unique=True)
    values = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self):
        return f"Thresholds v{self.version}"


class SummaryDocument(models.Model):
    """A stored rendering of a screening's PDF summary, one per version."""

    class Reason(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted")
        REVIEWED = "reviewed", _("Review signed")
        ADDENDUM = "addendum", _("Addendum added")
        UNLOCKED = "unlocked", _("Review voided")

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="documents")
    version = models.PositiveIntegerField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    pdf = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["screening", "version"]
        constraints = [
            models.UniqueConstraint(fields=["screening", "version"], name="one_pdf_per_version"),
        ]

    def __str__(self):
        return f"Summary v{self.version} of screening {self.screening_id}"


class AuditEvent(models.Model):
    """An append-only record of one read or change of patient data or configuration."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=40, blank=True, db_index=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{timezone.localtime(self.at):%Y-%m-%d %H:%M:%S} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRecordError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecordError("Audit events are append-only.")
