"""The review panel: clinicians work submitted screenings in the Django admin.

The app flags; the clinician decides and records the decision. Every page that
shows a screening writes one ``intake.screening.viewed`` audit row, and every
action goes through one service in ``intake.reviews``.
"""

import secrets
from functools import update_wrapper
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.sites import AdminSite
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR, ChangeList
from django.contrib.auth import REDIRECT_FIELD_NAME, get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timesince import timesince
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from intake import accounts, audit, documents, pdf, presentation, reviews, thresholds
from intake.admin_actions import CheckedSelectionMixin
from intake.admin_forms import (
    STALE_FORM,
    AccountPasswordForm,
    AddendumForm,
    DeterminationForm,
    OwnPasswordChangeForm,
    RecordReviewForm,
    ThresholdsForm,
    UnlockForm,
    UserRoleChangeForm,
    UserRoleCreationForm,
    error_summary,
    parse_id,
    rebound,
)
from intake.admin_lookups import OwnFiltersOnlyMixin, restrict_lookups
from intake.models import AuditEvent, Determination, Role, Screening, ThresholdSet
from intake.services import IntakeError, current_thresholds
from intake.views import optional_url

admin.site.site_header = _("Review panel")
admin.site.site_title = _("Review panel")
admin.site.index_title = _("Screenings, reviews and clinic settings")
# The queue needs the width more than a second copy of the index menu.
admin.site.enable_nav_sidebar = False


def password_change(request, extra_context=None):
    """Change the signed-in user's password in the review panel, audited as in the app.

    That password is also the review signature. Django's ``AdminSite.password_change``
    with the app's audited view: the site is Django's default one, so its method is
    replaced here, before its URLs are built, rather than swapping the site class.
    """
    site = admin.site
    request.current_app = site.name
    return accounts.PasswordChangeView.as_view(
        form_class=OwnPasswordChangeForm,
        template_name=site.password_change_template or "admin/password_change_form.html",
        success_url=reverse("admin:password_change_done", current_app=site.name),
        extra_context={**site.each_context(request), **(extra_context or {})},
    )(request)


admin.site.password_change = password_change


def admin_view(view, cacheable=False):
    """Wrap a review panel view as Django does; a signed-in user without access gets a 403.

    Django sends a signed-in account without review panel access (intake staff)
    to the admin's sign-in page, which only says "You are authenticated as ...,
    but are not authorized" and offers to sign in as someone else: a dead end.
    They get the app's "Not allowed" page instead, with its link home, as a
    clinician gets on a clinic admin's page. Anonymous users still meet the
    sign-in page. Set on the default site, like ``password_change``, before its
    URLs are built.
    """
    checked = AdminSite.admin_view(admin.site, view, cacheable)

    def inner(request, *args, **kwargs):
        if request.user.is_authenticated and not admin.site.has_permission(request):
            raise PermissionDenied
        return checked(request, *args, **kwargs)

    return update_wrapper(inner, checked)


admin.site.admin_view = admin_view


class ErrorSummaryAdminMixin:
    """Django's add and change pages with the review panel's error summary.

    The summary above the form links each error to its field, in the page's order, as
    on the panel's own forms (``admin/change_form.html``). It takes the place of Django's
    "Please correct the errors below." note and of its list of the form's own errors.
    """

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        adminform = context["adminform"]
        # Inline formsets' errors are not in the summary: Django's note stays for them.
        if adminform.form.is_bound and not context.get("inline_admin_formsets"):
            context["error_summary"] = error_summary(
                adminform.form, order=flatten_fieldsets(adminform.fieldsets)
            )
            context["errors"] = None
        return super().render_change_form(request, context, add, change, form_url, obj)


@login_not_required
def login(request, extra_context=None):
    """Send the review panel's sign-in to the app's: one sign-in page, one lockout.

    Django's page said "You are authenticated as ..., but are not authorized" to a
    signed-in account without access and offered a second sign-in form. A signed-in
    user now goes to the panel's home, or gets the app's "Not allowed" page as on
    every panel page (``admin_view``); anyone else goes to the app's sign-in page
    with a ``next`` on this site (else the panel's home). A sign-in posted here (a
    page opened before) is handled by the app's own sign-in view, axes' lockout
    included. Set on the default site, like ``admin_view``, before its URLs are built.
    """
    if request.user.is_authenticated:
        if not admin.site.has_permission(request):
            raise PermissionDenied
        return redirect("admin:index")
    if request.method == "POST":
        return accounts.LoginView.as_view(next_page="admin:index")(request)
    target = request.GET.get(REDIRECT_FIELD_NAME, "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:index")
    return redirect_to_login(target, reverse("login"))


admin.site.login = login


# Short status labels so the queue fits a laptop screen.
QUEUE_STATUS = {
    Screening.Status.SUBMITTED: _("Awaiting review"),
    Screening.Status.IN_REVIEW: _("In review"),
    Screening.Status.REVIEWED: _("Signed"),
    Screening.Status.AMENDED: _("Signed, addendum"),
}

# A button's action reached by address (a sign-in sent the user back to it) is not done.
NOT_DONE_BY_ADDRESS = _(
    "Nothing was changed: that action is done with its button on this page. Use it again if "
    "you still want to."
)


def posted_id(request, name):
    """Return the posted id ``name`` as an int, or None when it is missing or not an id."""
    return parse_id(request.POST.get(name, ""))


def flag_badges(screening):
    """Return the flag counts as badges that carry their meaning in text, not colour alone."""
    labels = {
        "urgent": gettext("urgent"),
        "review": gettext("review"),
        "caution": gettext("caution"),
        "info": gettext("info"),
    }
    counts = [(kind, count, labels[kind]) for kind, count in screening.flag_counts()]
    shown = [(kind, f"{count} {label}") for kind, count, label in counts if count]
    if not shown:
        return format_html('<span class="flag-badge flag-none">{}</span>', gettext("No flags"))
    return format_html_join(" ", '<span class="flag-badge flag-{}">{}</span>', shown)


# ---------------------------------------------------------------------------
# Queue filters


def submitter_ids():
    """Return the ids of users who submitted a screening, by a skip scan of the submitted_by index.

    One index probe per submitter: SELECT DISTINCT (Django's RelatedOnlyFieldListFilter)
    reads every screening, and per-user EXISTS probes are planned as scans on skewed data.
    """
    quote = connection.ops.quote_name
    table = quote(Screening._meta.db_table)
    column = quote(Screening._meta.get_field("submitted_by").column)
    sql = (
        f"WITH RECURSIVE submitter(id) AS ("
        f" SELECT MIN({column}) FROM {table}"
        f" UNION ALL"
        f" SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > submitter.id)"
        f" FROM submitter WHERE submitter.id IS NOT NULL"
        f") SELECT id FROM submitter WHERE id IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


class SubmitterFilter(admin.RelatedFieldListFilter):
    """The "submitted by" filter, listing only users who submitted a screening."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        users = field.remote_field.model._default_manager.filter(pk__in=submitter_ids())
        if ordering:
            users = users.order_by(*ordering)
        return [(user.pk, str(user)) for user in users]


def queue_title(state):
    """Return the queue's heading for the chosen review state (``?state=``)."""
    if state == "all":
        return gettext("All screenings")
    if state in QUEUE_STATUS:
        return gettext("Screenings: %(state)s") % {"state": QUEUE_STATUS[state]}
    return gettext("Screenings to review")


class ReviewStateFilter(admin.SimpleListFilter):
    """The queue shows what is still to review unless another state is chosen.

    Without it a signed urgent screening stayed above every screening still
    awaiting review, since the order is by flags first.
    """

    title = _("review state")
    parameter_name = "state"
    DEFAULT = "open"

    def lookups(self, request, model_admin):
        return [
            (self.DEFAULT, _("To review (awaiting or in review)")),
            *((status, QUEUE_STATUS[status]) for status in Screening.Status),
            ("all", _("All")),
        ]

    def value(self):
        value = super().value()
        return value if value in {key for key, _label in self.lookup_choices} else self.DEFAULT

    def choices(self, changelist):
        # No blank "All" entry: "All" is a choice of its own, and no choice is "to review".
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string(
                    remove=[self.parameter_name] if lookup == self.DEFAULT else None,
                    new_params=None if lookup == self.DEFAULT else {self.parameter_name: lookup},
                ),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.DEFAULT:
            # "IN (true)", not "is_open = true": Django writes the latter as a bare
            # "WHERE is_open", for which SQLite uses no index.
            return queryset.filter(is_open__in=[True])
        if value == "all":
            return queryset
        return queryset.filter(status=value)


class UrgentFilter(admin.SimpleListFilter):
    title = _("urgent flag")
    parameter_name = "urgent"

    def lookups(self, request, model_admin):
        return [("yes", _("Has an urgent flag")), ("no", _("No urgent flag"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(urgent_count__gt=0)
        if self.value() == "no":
            return queryset.filter(urgent_count=0)
        return queryset


class SeverityFilter(admin.SimpleListFilter):
    title = _("flag severity present")
    parameter_name = "severity"

    def lookups(self, request, model_admin):
        return [
            ("review", _("Review")),
            ("caution", _("Caution")),
            ("info", _("Info")),
            ("none", _("No flags")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value in ("review", "caution", "info"):
            return queryset.filter(**{f"{value}_count__gt": 0})
        if value == "none":
            return queryset.filter(urgent_count=0, review_count=0, caution_count=0, info_count=0)
        return queryset


# ---------------------------------------------------------------------------
# Screenings: the queue and the review page


# The queue's search terms are patient names and MRNs, so they never go in a URL
# (where access logs, browser history and "Referer" keep them): the search form
# posts the term, the session keeps it under a random token, and the URLs carry
# only ``?search=<token>``.
SEARCH_TOKEN_VAR = "search"
SEARCHES_KEY = "intake.queue_searches"
SEARCHES_KEPT = 20
SEARCH_MAX_LENGTH = 200


def remember_search(session, term):
    """Keep ``term`` in the session and return the token that stands for it in URLs."""
    searches = session.get(SEARCHES_KEY, {})
    for token, known in searches.items():
        if known == term:
            return token
    token = secrets.token_urlsafe(9)
    searches[token] = term
    session[SEARCHES_KEY] = dict(list(searches.items())[-SEARCHES_KEPT:])
    return token


def recalled_search(request):
    """Return the term of the request's search token: "" without one, None if unknown."""
    token = request.GET.get(SEARCH_TOKEN_VAR)
    if not token:
        return ""
    return request.session.get(SEARCHES_KEY, {}).get(token)


class QueueChangeList(ChangeList):
    """The queue's change list: searched by token, and without a filter its count is the total.

    With ``show_full_result_count = False`` Django never knows the total, so it
    offered "N results (Show all)" on every page, even with nothing to show
    more of. Unfiltered, the one COUNT it runs is the total.
    """

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(SEARCH_TOKEN_VAR, None)
        return lookup_params

    def get_queryset(self, request, exclude_parameters=None):
        self.query = recalled_search(request) or ""
        # The rows show the copied patient fields, counts and derived values;
        # decoding every row's answers and thresholds was a third of the page.
        return super().get_queryset(request, exclude_parameters).defer("answers", "thresholds")

    def get_results(self, request):
        super().get_results(request)
        if self.full_result_count is None and not (self.has_active_filters or self.query):
            self.full_result_count = self.result_count


def reviews_with_acknowledgements_in_order(screening, flags):
    """Return the reviews of ``screening``, each with the flags it acknowledged in PDF order."""
    order = [flag.rule_id for flag in pdf.in_severity_order(flags)]
    review_list = list(screening.reviews.all())
    for review in review_list:
        review.acknowledged_in_order = pdf.in_flag_order(review.acknowledged_rule_ids or (), order)
    return review_list


@admin.register(Screening)
class ScreeningAdmin(CheckedSelectionMixin, OwnFiltersOnlyMixin, admin.ModelAdmin):
    list_display = (
        "patient",
        "age",
        "submitted",
        "submitter",
        "flag_summary",
        "status_column",
    )
    list_display_links = ("patient",)
    list_filter = (
        ReviewStateFilter,
        UrgentFilter,
        SeverityFilter,
        ("submitted_at", admin.DateFieldListFilter),
        ("submitted_by", SubmitterFilter),
    )
    search_fields = ("patient_last_name", "patient_first_name", "patient_mrn", "id__exact")
    search_help_text = _("Search by patient name, MRN or screening number.")
    list_select_related = ("submitted_by", "claimed_by")
    list_per_page = 50
    # One COUNT per page view, not two: the unfiltered total costs a scan of the queue.
    show_full_result_count = False
    actions = ["export_csv"]

    def get_changelist(self, request, **kwargs):
        return QueueChangeList

    # -- queue columns ------------------------------------------------------

    @admin.display(description=_("Patient"), ordering="patient_last_name")
    def patient(self, obj):
        mrn = obj.patient_mrn or gettext("no MRN")
        return format_html(
            '<span class="queue-patient">{}, {}</span> <span class="queue-mrn">{} · #{}</span>',
            obj.patient_last_name,
            obj.patient_first_name,
            mrn,
            obj.pk,
        )

    @admin.display(description=_("Age"))
    def age(self, obj):
        return obj.derived.get("age", "–")

    @admin.display(description=_("Submitted"), ordering="submitted_at")
    def submitted(self, obj):
        return format_html(
            '{} <span class="queue-when">{}</span>',
            timezone.localtime(obj.submitted_at).strftime("%Y-%m-%d %H:%M"),
            gettext("%(time)s ago") % {"time": timesince(obj.submitted_at, depth=1)},
        )

    @admin.display(description=_("Submitted by"), ordering="submitted_by__username")
    def submitter(self, obj):
        return reviews.display_name(obj.submitted_by)

    # The field of the queue's default order, so the header shows that order
    # (most urgent first) instead of only its last key, "Submitted".
    @admin.display(description=_("Flags"), ordering="urgent_count")
    def flag_summary(self, obj):
        return flag_badges(obj)

    # Status and reviewer in one column, so the queue fits a tablet or a laptop
    # beside its filters.
    @admin.display(description=_("Status"), ordering="status")
    def status_column(self, obj):
        text = QUEUE_STATUS.get(obj.status) or obj.get_status_display()
        reviewer = reviews.display_name(obj.claimed_by)
        return format_html(
            '<span class="status status-{}">{}</span>{}',
            obj.status,
            text,
            format_html(
                '<span class="queue-reviewer">{}</span>',
                gettext("by %(name)s") % {"name": reviewer},
            )
            if reviewer
            else "",
        )

    # -- permissions ----------------------------------------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_export_permission(self, request):
        return request.user.has_perm("intake.export_screening")

    # -- export ---------------------------------------------------------------

    @admin.action(
        description=_("Export selected to CSV (screening ids only: no patient names, no answers)"),
        permissions=["export"],
    )
    def export_csv(self, request, queryset):
        try:
            text = reviews.export_screenings_csv(
                screening_ids=list(queryset.values_list("pk", flat=True)),
                user=request.user,
                request=request,
            )
        except IntakeError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="screenings-{stamp}.csv"'
        return response

    # -- views ------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        search = path("search/", wrap(self.search_view), name="intake_screening_search")
        views = {
            "claim": self.claim_view,
            "release": self.release_view,
            "review": self.record_review_view,
            "addendum": self.addendum_view,
            "unlock": self.unlock_view,
        }
        return [
            search,
            *(
                path(f"<path:object_id>/{name}/", wrap(view), name=f"intake_screening_{name}")
                for name, view in views.items()
            ),
            *super().get_urls(),
        ]

    def _queue_url(self, params):
        url = reverse("admin:intake_screening_changelist")
        return f"{url}?{urlencode(params, doseq=True)}" if params else url

    def _searched_params(self, request, data, drop):
        """Return ``data``'s queue parameters but ``drop``, its search term as a token."""
        params = {key: values for key, values in data.lists() if key not in drop}
        term = data.get(SEARCH_VAR, "").strip()[:SEARCH_MAX_LENGTH]
        if term:
            params[SEARCH_TOKEN_VAR] = remember_search(request.session, term)
        return params

    def search_view(self, request):
        """Keep the posted search term in the session; show the queue searched by its token."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            # Reached by address, e.g. sent back here after signing in again.
            return redirect("admin:intake_screening_changelist")
        drop = {"csrfmiddlewaretoken", SEARCH_VAR, SEARCH_TOKEN_VAR, PAGE_VAR}
        return redirect(self._queue_url(self._searched_params(request, request.POST, drop)))

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET" and (
            SEARCH_VAR in request.GET or recalled_search(request) is None
        ):
            return self._search_by_token(request)
        extra_context = {
            "title": queue_title(request.GET.get(ReviewStateFilter.parameter_name)),
            **(extra_context or {}),
        }
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        if response.status_code == 200 and "cl" in context:
            # Every list shown, whatever the method (a POST without an action shows
            # it too): one row naming the screenings shown, by id only.
            changelist = context["cl"]
            audit.record(
                action="intake.screening.listed",
                request=request,
                detail={
                    "results": changelist.result_count,
                    "shown": [screening.pk for screening in changelist.result_list],
                },
            )
        return response

    def _search_by_token(self, request):
        """Move a term typed into the URL (``?q=``) into the session; drop an unknown token."""
        typed = request.GET.get(SEARCH_VAR, "").strip()
        params = self._searched_params(request, request.GET, {SEARCH_VAR})
        if not typed and recalled_search(request) is None:
            del params[SEARCH_TOKEN_VAR]
            self.message_user(
                request, gettext("That search has expired; search again."), messages.WARNING
            )
        return redirect(self._queue_url(params))

    def _screening(self, request, object_id):
        screening = self.get_object(request, unquote(object_id))
        if screening is None:
            raise Http404(gettext("This screening does not exist."))
        if not self.has_view_permission(request, screening):
            raise PermissionDenied
        return screening

    def _change_url(self, screening):
        return reverse("admin:intake_screening_change", args=[screening.pk])

    def _viewed(self, request, screening, view):
        audit.record(
            action="intake.screening.viewed", obj=screening, request=request, detail={"view": view}
        )

    def _page(self, request, screening, template, title, **context):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                # No "subtitle": Django puts it in <title>, and a patient's name in
                # browser history or a tab list is seen by the next user of the
                # workstation. The page's summary shows the name instead.
                "title": title,
                "screening": screening,
                "original": screening,
                "change_url": self._change_url(screening),
                "flags": list(screening.flags.all()),
                **context,
            },
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        screening = self._screening(request, object_id)
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        self._viewed(request, screening, "admin")
        user = request.user
        can_review = user.has_perms(["intake.review_screening", "intake.add_review"])
        claimed_by_other = (
            screening.status == Screening.Status.IN_REVIEW
            and screening.claimed_by_id not in (None, user.pk)
        )
        flags = list(screening.flags.all())
        return self._page(
            request,
            screening,
            "admin/intake/screening/change_form.html",
            gettext("Screening #%(id)s") % {"id": screening.pk},
            flags=[
                (
                    flag,
                    [
                        presentation.evidence_text(item, tz=timezone.get_current_timezone())
                        for item in flag.evidence
                    ],
                )
                for flag in flags
            ],
            badges=flag_badges(screening),
            urgent_flags=[flag for flag in flags if flag.urgent],
            suicide_protocol=presentation.suicide_protocol(),
            sections=presentation.snapshot_sections(screening, tz=timezone.get_current_timezone()),
            derived=presentation.derived_rows(screening.derived or {}),
            review_list=reviews_with_acknowledgements_in_order(screening, flags),
            addendum_list=list(screening.addenda.all()),
            history=[
                (event, audit.action_label(event.action))
                for event in AuditEvent.objects.filter(
                    object_type="screening", object_id=str(screening.pk)
                ).order_by("-at", "-id")[:200]
            ],
            pdf_url=optional_url("intake:screening_pdf", screening.pk),
            earlier_pdfs=[v for v in documents.versions(screening) if not v.latest],
            fhir_url=optional_url("intake:screening_fhir", screening.pk),
            staff_url=optional_url("intake:screening", screening.pk),
            can_claim=can_review and not screening.is_locked and screening.claimed_by_id != user.pk,
            claimed_by_other=claimed_by_other,
            can_release=screening.status == Screening.Status.IN_REVIEW
            and (screening.claimed_by_id == user.pk or user.has_perm("intake.unlock_screening")),
            can_review=can_review and not screening.is_locked and not claimed_by_other,
            can_addend=screening.is_locked and user.has_perm("intake.add_addendum"),
            can_unlock=screening.is_locked and user.has_perm("intake.unlock_screening"),
            claimer=reviews.display_name(screening.claimed_by),
        )

    def history_view(self, request, object_id, extra_context=None):
        screening = self._screening(request, object_id)
        return redirect(self._change_url(screening) + "#history")

    def _post_only_action(self, request, object_id, service, success, **kwargs):
        screening = self._screening(request, object_id)
        if request.method != "POST":
            # Reached by address, e.g. sent back here after signing in again: the
            # action is only ever done by its button, so show the screening.
            self.message_user(request, NOT_DONE_BY_ADDRESS, messages.INFO)
            return redirect(self._change_url(screening))
        if not request.user.has_perm("intake.review_screening"):
            raise PermissionDenied
        try:
            service(screening_id=screening.pk, user=request.user, request=request, **kwargs)
        except IntakeError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, success, messages.SUCCESS)
        return redirect(self._change_url(screening))

    def claim_view(self, request, object_id):
        # A take-over names the reviewer the page showed, so it never takes over from another.
        take_over = request.POST.get("take_over") == "1"
        return self._post_only_action(
            request,
            object_id,
            reviews.claim_screening,
            gettext("You are now reviewing this screening; other clinicians see your name."),
            take_over_from=posted_id(request, "claimed_by") if take_over else None,
        )

    def release_view(self, request, object_id):
        claimed_by = posted_id(request, "claimed_by")
        if request.method == "POST" and claimed_by is None:
            self.message_user(request, STALE_FORM, messages.ERROR)
            return redirect(self._change_url(self._screening(request, object_id)))
        return self._post_only_action(
            request,
            object_id,
            reviews.release_claim,
            gettext("The screening is back in the queue."),
            claimed_by_id=claimed_by,
        )

    def _form_view(
        self,
        request,
        screening,
        form,
        *,
        act,
        success,
        view,
        template,
        title,
        context=dict,
        refreshed=None,
    ):
        """Run ``act(form)`` for a valid POST and return to the screening, else show the form.

        ``context`` returns the page's extra context; it is built only when the page is shown.
        ``refreshed(form)``, when given, returns the refused form moved onto the screening's
        state now, so that sending it again is a deliberate choice.
        """
        if request.method == "POST" and form.is_valid():
            try:
                act(form)
            except IntakeError as exc:
                if refreshed is not None:
                    form = refreshed(form)
                form.add_error(None, str(exc))
            else:
                self.message_user(request, success, messages.SUCCESS)
                return redirect(self._change_url(screening))
        self._viewed(request, screening, view)
        return self._page(request, screening, template, title, form=form, **context())

    def record_review_view(self, request, object_id):
        screening = self._screening(request, object_id)
        if not request.user.has_perms(["intake.review_screening", "intake.add_review"]):
            raise PermissionDenied
        if request.method == "GET" and screening.is_locked:
            self.message_user(request, reviews.signed_message(screening), messages.WARNING)
            return redirect(self._change_url(screening))
        flags = reviews.flags_to_acknowledge(screening)
        return self._form_view(
            request,
            screening,
            RecordReviewForm(
                request.POST or None,
                flags=flags,
                initial={"reviews_seen": screening.reviews.count()},
            ),
            act=lambda form: reviews.record_review(
                screening_id=screening.pk,
                user=request.user,
                determination_id=form.cleaned_data["determination"].pk,
                note=form.cleaned_data["note"],
                acknowledged_rule_ids=form.acknowledged_rule_ids(),
                password=form.cleaned_data["password"],
                reviews_seen=form.cleaned_data["reviews_seen"],
                request=request,
            ),
            # Refused because a review came and went meanwhile: shown again on the
            # screening as it is now, so that signing is a choice made knowing it.
            refreshed=lambda form: rebound(form, reviews_seen=screening.reviews.count()),
            success=gettext("Review signed. The screening is locked."),
            view="record_review",
            template="admin/intake/screening/record_review.html",
            title=gettext("Record review of screening #%(id)s") % {"id": screening.pk},
            context=lambda: {
                "other_flags": [f for f in screening.flags.all() if f not in flags],
                "badges": flag_badges(screening),
                "claimed_by_other": screening.status == Screening.Status.IN_REVIEW
                and screening.claimed_by_id not in (None, request.user.pk),
                "claimer": reviews.display_name(screening.claimed_by),
            },
        )

    def addendum_view(self, request, object_id):
        screening = self._screening(request, object_id)
        if not request.user.has_perms(["intake.review_screening", "intake.add_addendum"]):
            raise PermissionDenied
        review_id = self._current_review_id(screening)
        return self._form_view(
            request,
            screening,
            AddendumForm(request.POST or None, initial={"review": review_id}),
            act=lambda form: reviews.add_addendum(
                screening_id=screening.pk,
                user=request.user,
                review_id=form.cleaned_data["review"],
                text=form.cleaned_data["text"],
                password=form.cleaned_data["password"],
                form_token=form.cleaned_data["form_token"],
                request=request,
            ),
            success=gettext("Addendum signed."),
            view="addendum",
            template="admin/intake/screening/addendum.html",
            title=gettext("Add an addendum to screening #%(id)s") % {"id": screening.pk},
            context=lambda: {"review": reviews.current_review(screening)},
            refreshed=lambda form: rebound(form, review=self._current_review_id(screening)),
        )

    def unlock_view(self, request, object_id):
        screening = self._screening(request, object_id)
        if not request.user.has_perm("intake.unlock_screening"):
            raise PermissionDenied
        review = reviews.current_review(screening)
        return self._form_view(
            request,
            screening,
            UnlockForm(request.POST or None, initial={"review": review.pk if review else None}),
            act=lambda form: reviews.unlock_screening(
                screening_id=screening.pk,
                user=request.user,
                review_id=form.cleaned_data["review"],
                reason=form.cleaned_data["reason"],
                request=request,
            ),
            success=gettext("Unlocked. The signed review is kept in the history, marked void."),
            view="unlock",
            template="admin/intake/screening/unlock.html",
            title=gettext("Unlock screening #%(id)s") % {"id": screening.pk},
            context=lambda: {"review": reviews.current_review(screening)},
            refreshed=lambda form: self._unlock_form_now(form, screening),
        )

    def _unlock_form_now(self, form, screening):
        """Return a refused unlock form moved onto the review in force now, if any."""
        review_id = self._current_review_id(screening)
        again = rebound(form, review=review_id)
        if review_id is None:
            # Nothing in force to unlock: the page says so, once, and offers no form.
            again.errors.pop("review", None)
        return again

    def _current_review_id(self, screening):
        review = reviews.current_review(screening)
        return review.pk if review else None


# ---------------------------------------------------------------------------
# Thresholds


def changes_text(changes):
    """Return ``{name: (old, new)}`` as "name old → new", semicolon-separated."""
    return "; ".join(f"{name} {old} → {new}" for name, (old, new) in changes.items())


@admin.register(ThresholdSet)
class ThresholdSetAdmin(OwnFiltersOnlyMixin, admin.ModelAdmin):
    list_display = ("version", "created_at", "created_by", "note")
    list_select_related = ("created_by",)
    fields = ("version", "created_at", "created_by", "note", "values_table")
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        # A version is never edited; a change is always a new version.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Values"))
    def values_table(self, obj):
        values = thresholds.decode(obj.values)
        return format_html(
            '<table class="threshold-values">{}</table>',
            format_html_join(
                "",
                "<tr><th scope='row'>{}</th><td>{}</td><td>{}</td></tr>",
                (
                    (name, values.get(name, default), unit)
                    for name, (default, unit, _used) in thresholds.SPEC.items()
                ),
            ),
        )

    def changelist_view(self, request, extra_context=None):
        version, values = current_thresholds()
        extra_context = {
            **(extra_context or {}),
            "version_in_force": version,
            "values_in_force": [
                (name, values[name], unit, thresholds.DESCRIPTIONS[name])
                for name, (_d, unit, _used) in thresholds.SPEC.items()
            ],
        }
        return super().changelist_view(request, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        version, values = current_thresholds()
        form = ThresholdsForm(request.POST or None, current=values, version=version)
        if request.method == "POST" and form.is_valid():
            try:
                threshold_set = reviews.save_thresholds(
                    values=form.threshold_values(),
                    user=request.user,
                    based_on_version=form.cleaned_data["based_on_version"],
                    note=form.cleaned_data["note"],
                    request=request,
                )
            except reviews.ThresholdsChangedError as exc:
                # Shown again on the newer version: saving once more is a deliberate choice.
                form = form.rebased(
                    version=exc.version, values=exc.values, base_values=exc.base_values
                )
                form.add_error(None, str(exc))
                if form.taken_from_newer:
                    form.add_error(
                        None,
                        gettext("Taken from version %(version)s: %(changes)s.")
                        % {
                            "version": exc.version,
                            "changes": changes_text(form.taken_from_newer),
                        },
                    )
                version = exc.version
            except IntakeError as exc:
                form.add_error(None, str(exc))
            else:
                # Saved on the version the form was built on: ``values`` are the old ones.
                changed = thresholds.changes(values, thresholds.decode(threshold_set.values))
                self.message_user(
                    request,
                    gettext(
                        "Thresholds version %(version)s is now in force for new screenings: "
                        "%(changes)s. Submitted screenings keep the values they were evaluated "
                        "with."
                    )
                    % {"version": threshold_set.version, "changes": changes_text(changed)},
                    messages.SUCCESS,
                )
                return redirect("admin:intake_thresholdset_changelist")
        return TemplateResponse(
            request,
            "admin/intake/thresholdset/edit.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": gettext("Change thresholds"),
                "form": form,
                "version_in_force": version,
                "rows": [(form[name], name) for name in thresholds.SPEC],
            },
        )


# ---------------------------------------------------------------------------
# Determinations, audit trail, users


@admin.register(Determination)
class DeterminationAdmin(ErrorSummaryAdminMixin, OwnFiltersOnlyMixin, admin.ModelAdmin):
    form = DeterminationForm
    list_display = ("label", "position", "active")
    list_filter = ("active",)
    fields = ("label", "position", "active")

    def has_delete_permission(self, request, obj=None):
        # Reviews copy the label; deactivate instead so the list stays auditable.
        return False

    def save_model(self, request, obj, form, change):
        # Read before saving: the form's instance already holds the new values.
        stored = Determination.objects.filter(pk=obj.pk).values(*self.fields).first() or {}
        super().save_model(request, obj, form, change)
        detail = {"label": obj.label, "active": obj.active, "fields": form.changed_data}
        if change:
            # Old and new values, as for accounts: a renamed option names both labels.
            detail["changes"] = {
                name: [stored.get(name), getattr(obj, name)]
                for name in self.fields
                if stored.get(name) != getattr(obj, name)
            }
        audit.record(
            action="intake.determination.changed" if change else "intake.determination.added",
            obj=obj,
            request=request,
            detail=detail,
        )


class ActionFilter(admin.SimpleListFilter):
    """Filter the log by action, listed by what each means."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return sorted(audit.ACTION_LABELS.items(), key=lambda item: str(item[1]))

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


# Rows of a sign-in attempt: nobody is signed in, the username tried is in the detail.
ATTEMPT_ACTIONS = frozenset({"intake.auth.login_failed", "intake.auth.locked_out"})


@admin.register(AuditEvent)
class AuditEventAdmin(OwnFiltersOnlyMixin, admin.ModelAdmin):
    list_display = ("when", "event", "actor_column", "object_type", "object_id", "ip")
    list_display_links = ("when",)
    list_filter = (ActionFilter, "at", ("actor", admin.RelatedOnlyFieldListFilter))
    # The detail's "username" is an account's name only (never text typed that names
    # no account): the one tried at sign-in, or whose lockout was lifted or ended.
    search_fields = ("object_id__exact", "action", "actor_username", "detail__username")
    search_help_text = _(
        "Search by action code, object number, or username (signed in, or tried at sign-in)."
    )
    date_hierarchy = "at"
    fields = (
        "when",
        "event",
        "actor",
        "actor_username",
        "object_type",
        "object_id",
        "ip",
        "detail",
    )
    readonly_fields = fields
    list_select_related = ("actor",)

    def changelist_view(self, request, extra_context=None):
        extra_context = {"title": gettext("Audit log"), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("When"), ordering="at")
    def when(self, obj):
        return timezone.localtime(obj.at).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description=_("Actor"), ordering="actor_username")
    def actor_column(self, obj):
        """The signed-in user; for a failed sign-in or lockout, the username tried, marked."""
        if obj.actor_username or obj.action not in ATTEMPT_ACTIONS:
            return obj.actor_username or self.get_empty_value_display()
        detail = obj.detail if isinstance(obj.detail, dict) else {}
        if detail.get("username"):
            return gettext("%(username)s (attempted)") % {"username": detail["username"]}
        if detail.get("unknown_username"):
            return gettext("unknown username (attempted)")
        return self.get_empty_value_display()

    @admin.display(description=_("Action"), ordering="action")
    def event(self, obj):
        return format_html(
            '{} <code class="audit-code">{}</code>', audit.action_label(obj.action), obj.action
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class IntakeUserAdmin(
    ErrorSummaryAdminMixin, CheckedSelectionMixin, OwnFiltersOnlyMixin, UserAdmin
):
    """Clinic admins manage accounts and roles; only superusers grant superuser."""

    form = UserRoleChangeForm
    add_form = UserRoleCreationForm
    change_password_form = AccountPasswordForm
    list_display = ("username", "first_name", "last_name", "role", "is_active", "last_login")
    list_filter = ("is_active", "groups")
    staff_fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Name"), {"fields": ("first_name", "last_name", "email")}),
        (_("Access"), {"fields": ("is_active", "role")}),
    )
    add_fieldsets = (
        (None, {"fields": ("username", "usable_password", "password1", "password2", "role")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("Role"))
    def role(self, obj):
        names = {group.name for group in obj.groups.all()}
        for role in (Role.CLINIC_ADMIN, Role.CLINICIAN, Role.INTAKE_STAFF):
            if role.value in names:
                return role.label
        return "–"

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        if request.user.is_superuser:
            return (*super().get_fieldsets(request, obj), (_("Role"), {"fields": ("role",)}))
        return self.staff_fieldsets

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        password = context["adminform"].form.fields.get("password")
        if password is not None and not self.has_change_permission(request, obj):
            # An account shown read-only (a superuser): no link to a page refused to this user.
            password.widget.password_url = ""
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    # -- the last clinic admin is kept (the change form refuses deactivating or demoting) --

    def _refuse_leaving_no_clinic_admin(self, request, users):
        """Say so and return True if deleting ``users`` would leave no active clinic admin."""
        users = list(users)
        if not accounts.leaves_no_clinic_admin(user.pk for user in users):
            return False
        admins = accounts.active_clinic_admins().filter(pk__in=[user.pk for user in users])
        username = ", ".join(admin.get_username() for admin in admins)
        self.message_user(
            request, accounts.LAST_CLINIC_ADMIN % {"username": username}, messages.ERROR
        )
        return True

    def delete_view(self, request, object_id, extra_context=None):
        with transaction.atomic():
            user = self.get_object(request, unquote(object_id))
            if (
                user is not None
                and self.has_delete_permission(request, user)
                and self._refuse_leaving_no_clinic_admin(request, [user])
            ):
                return redirect("admin:auth_user_change", user.pk)
            return super().delete_view(request, object_id, extra_context)

    @admin.action(permissions=["delete"], description=_("Delete selected %(verbose_name_plural)s"))
    def delete_selected(self, request, queryset):
        """Django's bulk delete, refused when it would leave no active clinic admin."""
        with transaction.atomic():
            if self._refuse_leaving_no_clinic_admin(request, queryset):
                return None
            return django_delete_selected(self, request, queryset)

    actions = ["delete_selected"]

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # the password was set
            audit.record(
                action="intake.user.password_changed",
                obj=self.get_object(request, unquote(id)),
                request=request,
                detail={"by": "admin"},
            )
        return response

    # Account flags whose old and new values the audit row records (never the password).
    AUDITED_FLAGS = ("is_active", "is_staff", "is_superuser")

    def save_model(self, request, obj, form, change):
        # Read before saving: the form's instance already holds the new values.
        stored = type(obj).objects.filter(pk=obj.pk).values(*self.AUDITED_FLAGS).first()
        form.flags_before = stored or {}
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        user = form.instance
        # The form's role field starts from the user's role before this change.
        before = form.fields["role"].initial if change else ""
        role = form.apply_role(user)
        flags_before = getattr(form, "flags_before", {})
        changes = {
            name: [flags_before.get(name), getattr(user, name)]
            for name in self.AUDITED_FLAGS
            if not change or flags_before.get(name) != getattr(user, name)
        }
        if role != before:
            changes["role"] = [before, role]
        audit.record(
            action="intake.user.changed" if change else "intake.user.created",
            obj=user,
            request=request,
            detail={
                "role": role,
                "previous_role": before,
                "fields": [name for name in form.changed_data if "password" not in name],
                "changes": changes,
            },
        )


import intake.admin_lockouts  # noqa: E402, F401  sign-in lockouts, replacing axes' admin

# Last, once every admin is registered: the others' lists filter by their own filters only, too.
restrict_lookups(admin.site)
