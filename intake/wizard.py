"""The staff intake wizard: one formtools view over the instrument's steps, drafts in the database.

Storage is the ``Draft`` row of the URL (never the session or a cookie), so
two tabs with two patients never share answers. Each save recomputes the
draft's canonical answers, pruned of hidden questions (INSTRUMENT.md 2.2).

Two tabs on the same draft: every page carries a digest of its step's stored
data as it was shown (the review page also one of every answer it shows). A
post whose digest no longer matches, and whose entries differ from what is
stored, comes from a page another tab has overtaken: it stores nothing and
shows the step again with what it posted and what the other tab saved.
"""

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import traceback
from functools import lru_cache

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.forms.utils import ErrorDict
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from formtools.wizard.storage.base import BaseStorage
from formtools.wizard.views import NamedUrlWizardView, StepsHelper

from intake import audit, instrument, lexicon, presentation, rules, services
from intake.forms import MED_ROW_INDEX, med_list_errors, step_form_class
from intake.models import Draft
from intake.security import idle_sign_out_message

# idle.js sends the step's form with one of these as ``autosave``.
AUTOSAVE_AT_TIMEOUT = "1"  # the idle timeout: save, sign out, back here after sign-in
AUTOSAVE_IN_BACKGROUND = "background"  # the page was hidden: save and stay
# The header's "Sign out" on a wizard page submits the step form with this name.
SIGN_OUT = "wizard_sign_out"
STEP_DIGEST = "step_digest"
ANSWERS_DIGEST = "answers_digest"
# The review page's thresholds version: its flags were computed with it.
THRESHOLDS_SHOWN = "thresholds_version"
# Each page's own random token: a post is never "another tab's change" to itself
# (its background save may land while its "Next" is on the way).
PAGE_TOKEN = "page_token"
PAGE_TOKEN_LENGTH = 32
STEP_WRITERS = "step_writers"  # extra data: step -> token of the page that saved it last
# Set on a page shown again after a conflict: there only "Next" keeps its entries.
CONFLICT_SHOWN = "conflict_shown"
# Extra data: step -> the entries of an overtaken page that left with nobody to show both
# versions to (a closed or hidden tab, the idle timeout, "Sign out"). Never answers: the step
# shows them until someone saves it from its page.
HELD_ENTRIES = "held_entries"
SIGNED_OUT_SAVED = gettext_lazy(
    "Signed out. Your draft was saved; sign in to continue where you left off."
)
# A background save answers with the digest of what it stored; idle.js keeps it.
DIGEST_HEADER = "X-Step-Digest"

logger = logging.getLogger(__name__)

URL_NAME = "intake:wizard_step"
REVIEW = "review"
STEP_INDEX = {slug: index for index, slug in enumerate(instrument.STEP_SLUGS)}
PLAUSIBILITY_ACK = "plausibility_ack"
PLAUSIBILITY_ACCEPTED = "plausibility_accepted"
# The threshold version the stored steps were last pruned with.
PRUNED_WITH = "pruned_with_thresholds"


class DraftStorage(BaseStorage):
    """Formtools storage kept in ``Draft.wizard_state`` of one draft."""

    def __init__(self, prefix, request=None, file_storage=None, *, draft):
        super().__init__(prefix, request, file_storage)
        self.draft = draft
        state = draft.wizard_state or {}
        if state.get(self.step_data_key) is None:
            self.init_data()
        else:
            self.data = {
                self.step_key: state.get(self.step_key),
                self.step_data_key: dict(state.get(self.step_data_key) or {}),
                self.step_files_key: {},
                self.extra_data_key: dict(state.get(self.extra_data_key) or {}),
            }
        self._saved = self._encoded()

    def _encoded(self):
        return json.dumps(self.data, sort_keys=True)

    def save(self, **fields):
        """Write the state (and any other draft ``fields``) unless the draft was submitted."""
        encoded = self._encoded()
        if encoded == self._saved and not fields:
            return
        Draft.objects.filter(pk=self.draft.pk, screening__isnull=True).update(
            wizard_state=json.loads(encoded), **fields
        )
        self._saved = encoded

    def update_response(self, response):
        self.save()
        super().update_response(response)

    def keep_stored(self):
        """Leave the stored state as it was loaded: nothing of this request is written."""
        self._saved = self._encoded()


def digest(value):
    """Return a short SHA-256 of ``value``'s canonical JSON."""
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()[:16]


def answers_digest(answers):
    """Return the digest of the answers a review page shows (the attestation is its own form)."""
    encoded = instrument.encode_answers(answers)
    encoded.pop("staff_attestation", None)
    return digest(encoded)


def step_applies_condition(step):
    """Return the formtools condition for ``step`` (evaluated on the draft's answers)."""

    def condition(wizard):
        return instrument.step_applies(step, wizard.answers, wizard.thresholds)

    return condition


def earlier_answers(answers, slug):
    """Return the answers of the steps before ``slug``."""
    index = STEP_INDEX[slug]
    return {
        code: value
        for code, value in answers.items()
        if STEP_INDEX[instrument.step_of(code).slug] < index
    }


def preview_flags(answers, thresholds, *, urgent_only=False):
    """Return the flags the rules raise for ``answers`` right now, or None if unavailable."""
    try:
        return rules.evaluate(
            answers, now=timezone.localtime(), thresholds=thresholds, urgent_only=urgent_only
        )
    except NotImplementedError:
        logger.warning("Flag rules are not available; preview skipped.")
        return None


def urgent_flags(flags):
    """Return the urgent flags among ``flags`` (None-safe)."""
    return [flag for flag in flags or () if flag.urgent]


@lru_cache(maxsize=8)
def _visibility(threshold_items):
    return instrument.visibility_json(dict(threshold_items))


def visibility(thresholds):
    """Return the show/hide conditions for ``thresholds`` (built once per set; read-only)."""
    return _visibility(tuple(sorted(thresholds.items())))


# The codes the show/hide script reads: those named in any step's or question's condition.
CONDITION_CODES = frozenset().union(
    *(q.shown_when.codes() for q in instrument.QUESTIONS.values() if q.shown_when is not None),
    *(step.applies_when.codes() for step in instrument.STEPS if step.applies_when is not None),
)


def js_answers(answers):
    """Return the answers the show/hide script needs, with numbers as numbers."""
    data = {}
    for code in CONDITION_CODES:
        if code in answers:
            value = answers[code]
            if instrument.question(code).type in (
                instrument.INT,
                instrument.DECIMAL,
                instrument.SCALE,
            ):
                value = float(value)
            data[code] = value
    return data


MED_ROW_SUFFIX = re.compile(rf"-{MED_ROW_INDEX}-(?:name|dose|frequency)$")


def storable_text(value):
    """Return posted text without NUL characters, which PostgreSQL's jsonb cannot hold."""
    return value.replace("\x00", "")


def field_names(slug, code):
    """Return the posted field name of question ``code`` on step ``slug``."""
    return f"{slug}-{code}"


# Per step, the posted names of questions that have a "shown when" condition: only
# these can turn hidden, so a stored step without any of them needs no re-check.
CONDITIONAL_FIELDS = {
    step.slug: frozenset(field_names(step.slug, q.code) for q in step.questions if q.shown_when)
    for step in instrument.STEPS
}


def typed_display(q, typed):
    """Return raw posted values of question ``q`` (see ``raw_value``) as staff read them."""
    if q.type == instrument.MED_LIST:
        rows = {}
        for key, values in typed:
            row, _sep, part = key.rpartition("-")
            rows.setdefault(row, {})[part] = " ".join(values)
        return "; ".join(
            " ".join(row[part] for part in ("name", "dose", "frequency") if row.get(part))
            # In row order: "-10" after "-9", not after "-1".
            for _key, row in sorted(rows.items(), key=lambda item: int(item[0].rsplit("-", 1)[1]))
        )
    labels = {str(choice.key): str(choice.label) for choice in q.choices}
    return ", ".join(labels.get(value, value) for value in typed) or str(_("no answer"))


def raw_value(data, slug, q):
    """Return question ``q``'s posted value in raw step ``data``, blanks left out, to compare."""
    name = field_names(slug, q.code)
    if q.type == instrument.MED_LIST:
        return sorted(
            (key, [value for value in values if value.strip()])
            for key, values in data.items()
            if MED_ROW_SUFFIX.sub("", key) == name and any(value.strip() for value in values)
        )
    return [value for value in data.get(name, ()) if value.strip()]


def may_hold_hidden_answers(slug, data):
    """Return whether stored step data holds a value of a question that can be hidden."""
    conditional = CONDITIONAL_FIELDS[slug]
    return any(key in conditional or MED_ROW_SUFFIX.sub("", key) in conditional for key in data)


@method_decorator(
    permission_required("intake.conduct_screening", raise_exception=True), name="dispatch"
)
class ScreeningWizard(NamedUrlWizardView):
    """Walk one draft through the instrument's steps, then submit it."""

    template_name = "intake/wizard_step.html"
    form_list = [(step.slug, step_form_class(step.slug)) for step in instrument.STEPS]
    condition_dict = {
        step.slug: step_applies_condition(step)
        for step in instrument.STEPS
        if step.applies_when is not None
    }

    @classmethod
    def get_initkwargs(cls, *args, **kwargs):
        kwargs.setdefault("url_name", URL_NAME)
        return super().get_initkwargs(*args, **kwargs)

    def dispatch(self, request, *args, draft_id, **kwargs):
        draft = Draft.objects.filter(pk=draft_id, created_by=request.user).first()
        if draft is None:
            raise Http404
        if draft.is_submitted:
            return self.submitted(request, draft)
        self.draft = draft
        # Set when a post came from a page another tab overtook (see changed_elsewhere).
        self.stale_notice = None
        self.thresholds_version, self.thresholds = services.current_thresholds()
        self.answers = instrument.decode_answers(draft.answers)
        self.prefix = f"draft_{draft.pk}"
        self.storage = DraftStorage(self.prefix, request, draft=draft)
        self.steps = StepsHelper(self)
        response = TemplateView.dispatch(self, request, *args, **kwargs)
        self.storage.update_response(response)
        return response

    def submitted(self, request, draft):
        """Answer a request for a submitted draft: nothing in it changes any more."""
        if request.method != "POST":
            return redirect(draft.screening)
        if SIGN_OUT in request.POST:
            logout(request)
            messages.info(request, _("Signed out."))
            return redirect_to_login(draft.screening.get_absolute_url())
        autosave = request.POST.get("autosave")
        if autosave == AUTOSAVE_AT_TIMEOUT:
            logout(request)
            messages.info(request, idle_sign_out_message(draft_saved=False))
            return redirect_to_login(draft.screening.get_absolute_url())
        if autosave != AUTOSAVE_IN_BACKGROUND:
            # A page left open (or reached with Back) after the submission.
            messages.warning(
                request,
                _(
                    "Nothing was changed: this screening was already submitted and is frozen. "
                    "Corrections are added as addenda by a clinician."
                ),
            )
        return redirect(draft.screening)

    # -- formtools hooks -------------------------------------------------

    def get_step_url(self, step):
        return reverse(URL_NAME, kwargs={"draft_id": self.draft.pk, "step": step})

    def get_form_kwargs(self, step=None):
        step = step or self.steps.current
        return {
            "context_answers": earlier_answers(self.answers, step),
            "thresholds": self.thresholds,
            "acknowledged": self.storage.extra_data.get(PLAUSIBILITY_ACK, {}),
        }

    def get_form_step_data(self, form):
        """Keep only this step's own shown fields (no CSRF token, buttons or forged names)."""
        shown = [code for code in form.fields if code not in form.hidden_codes]
        names = {field_names(form.prefix, code) for code in shown}
        lists = {
            field_names(form.prefix, code)
            for code in shown
            if instrument.question(code).type == instrument.MED_LIST
        }
        return {
            key: [storable_text(value) for value in values]
            for key, values in form.data.lists()
            if key in names or MED_ROW_SUFFIX.sub("", key) in lists
        }

    def forget_form_list(self):
        for attr in ("_resolved_form_list", "_cache_signature"):
            self.__dict__.pop(attr, None)

    # -- GET ---------------------------------------------------------------

    def get(self, request, *args, **kwargs):
        step = kwargs.get("step")
        form_list = self.get_form_list()
        if step not in form_list:
            target = self.storage.current_step
            if target not in form_list:
                target = self.draft.last_step if self.draft.last_step in form_list else None
            return redirect(self.get_step_url(target or self.steps.first))
        self.storage.current_step = step
        data = self.storage.get_step_data(step)
        form = self.get_form(step, data=data)
        if data is not None and "check" not in request.GET:
            # Show what was typed without shouting errors at a returning user.
            form.full_clean()
            form._errors = ErrorDict()
        audit.record(
            action="intake.draft.viewed", request=request, obj=self.draft, detail={"step": step}
        )
        return self.render(form)

    # -- POST --------------------------------------------------------------

    def post(self, request, *args, **kwargs):
        step = kwargs.get("step")
        form_list = self.get_form_list()
        if step not in form_list:
            return redirect(self.get_step_url(self.storage.current_step or self.steps.first))
        self.storage.current_step = step
        form = self.get_form(step, data=request.POST)
        valid = form.is_valid()
        goto = request.POST.get("wizard_goto_step")
        save_exit = "wizard_save_exit" in request.POST
        sign_out = SIGN_OUT in request.POST
        autosave = request.POST.get("autosave") if save_exit and not sign_out else None
        returning = request.POST.get("return_to") == REVIEW

        pressed_next = not (goto or save_exit or sign_out)
        notice = self.changed_elsewhere(step, form, pressed_next=pressed_next)
        if notice is not None:
            return self.refuse_stale(
                step,
                form,
                notice,
                autosave=autosave,
                sign_out=sign_out,
                goto=goto if goto in form_list else None,
                save_exit=save_exit,
            )

        self.store_step(step, form)
        form_list = self.get_form_list()

        if sign_out:
            self.persist(step, step)
            logout(request)
            messages.info(request, SIGNED_OUT_SAVED)
            return redirect_to_login(self.get_step_url(step))
        if save_exit:
            if autosave == AUTOSAVE_IN_BACKGROUND:
                # The page went out of sight (a tablet asleep, another app, or a
                # link followed): what was typed is kept now, as the session may
                # end before it is back. Where the draft resumes does not move:
                # this save can arrive after the next page has loaded.
                self.persist(step, self.draft.last_step or step)
                response = HttpResponse(status=204)
                response[DIGEST_HEADER] = self.step_digest(step)
                return response
            self.persist(step, step)
            if autosave == AUTOSAVE_AT_TIMEOUT:
                logout(request)
                messages.info(request, idle_sign_out_message(draft_saved=True))
                return redirect_to_login(self.get_step_url(step))
            messages.success(request, _("Draft saved. Resume it from this page."))
            return redirect("intake:home")
        if goto and goto in form_list:
            self.persist(step, goto)
            return redirect(self.get_step_url(goto))
        if not valid:
            self.persist(step, step)
            return self.render(form)
        if step == REVIEW:
            self.persist(step, step)
            return self.render_done(form, **kwargs)
        target = REVIEW if returning and REVIEW in form_list else self.get_next_step(step) or REVIEW
        self.persist(step, target)
        return redirect(self.get_step_url(target))

    def step_digest(self, step):
        """Return the digest of ``step``'s stored data."""
        return digest(self.storage.data[self.storage.step_data_key].get(step))

    def wrote_last(self, step):
        """Return whether this post's own page saved ``step`` last (its background save)."""
        token = self.request.POST.get(PAGE_TOKEN) or ""
        writers = self.storage.extra_data.get(STEP_WRITERS) or {}
        return bool(token) and writers.get(step) == token

    def changed_elsewhere(self, step, form, *, pressed_next):
        """Return a notice if another tab changed what this post's page showed, else None.

        A missing digest (a page from before digests, a hand-made post) is not
        checked; a malformed one never matches, so it counts as stale. A page
        shown again after a conflict keeps its entries only by "Next": any other
        way out of it (Back, a section, Save and exit, Sign out, a background or
        timeout save) leaves the other tab's answers in place.
        """
        if step == REVIEW:
            shown = self.request.POST.get(ANSWERS_DIGEST)
            if shown is not None and shown != answers_digest(self.answers):
                return {
                    "review": True,
                    "message": _(
                        "The answers changed in another tab or window since this page was "
                        "shown. Check them and submit again."
                    ),
                    "items": [],
                }
            # Only submitting depends on the flags the page showed.
            shown = self.request.POST.get(THRESHOLDS_SHOWN)
            if pressed_next and shown is not None and shown != str(self.thresholds_version):
                return {
                    "review": True,
                    "message": _(
                        "The clinic's thresholds changed since this page was shown (now version "
                        "%(version)s), so the flags may differ. Check them and submit again."
                    )
                    % {"version": self.thresholds_version},
                    "items": [],
                    # The answers it confirms are the ones shown: the confirmation holds.
                    "answers_unchanged": True,
                }
        shown = self.request.POST.get(STEP_DIGEST)
        if shown is None:
            return None
        stale = shown != self.step_digest(step) and not self.wrote_last(step)
        after_conflict = self.request.POST.get(CONFLICT_SHOWN) == "1" and not pressed_next
        if not (stale or after_conflict):
            return None
        mine = self.get_form_step_data(form)
        stored = self.storage.data[self.storage.step_data_key].get(step) or {}
        changed = [
            q
            for q in instrument.STEPS_BY_SLUG[step].questions
            if q.code not in form.hidden_codes
            and raw_value(mine, step, q) != raw_value(stored, step, q)
        ]
        if not changed:
            return None
        return {
            "review": False,
            "again": not stale,
            "message": _(
                "This step was changed in another tab or window after you opened it. Check "
                "these answers; press %(button)s to keep what is shown here:"
            )
            % {"button": self.keep_button_label(step)},
            "items": [
                {"code": q.code, "label": q.label, "saved": self.saved_display(step, q, stored)}
                for q in changed
            ],
        }

    def keep_button_label(self, step):
        """Return the label of the step's main button, as the page shows it."""
        if step == REVIEW:
            return _("Submit screening")
        if self.request.POST.get("return_to") == REVIEW:
            return _("Save and return to review")
        return _("Next")

    def saved_display(self, step, q, stored):
        """Return how question ``q``'s stored answer reads (None: a list not yet valid)."""
        if q.code in self.answers:
            return instrument.display_value(
                q.code, self.answers[q.code], timezone.get_current_timezone()
            )
        if q.type == instrument.MED_LIST:
            return None
        typed = raw_value(stored, step, q)
        return ", ".join(typed) if typed else _("no answer")

    def refuse_stale(self, step, form, notice, *, autosave, sign_out, goto, save_exit):
        """Store nothing from a page another tab overtook; show the step again, or leave it.

        Saves nobody watches answer 409 (background) or sign out saying so
        (timeout); "Sign out" always signs out. Otherwise the step is shown again
        with both versions; from a page already shown again, Back, a section or
        Save and exit go where asked, saying this page's entries were not kept.
        """
        self.storage.keep_stored()
        not_saved = _(
            "The entries on the last page were not saved: that step had been changed in "
            "another tab or window. Sign in to check it: the step shows what was typed."
        )
        if (autosave or sign_out) and not notice["review"]:
            # Nobody may be left to see both versions: the step shows these entries.
            self.hold_entries(step, form, notice)
        if autosave == AUTOSAVE_IN_BACKGROUND:
            return HttpResponse(status=409)
        if autosave == AUTOSAVE_AT_TIMEOUT:
            logout(self.request)
            messages.info(self.request, idle_sign_out_message(draft_saved=False) + " " + not_saved)
            return redirect_to_login(self.get_step_url(step))
        if sign_out:
            logout(self.request)
            # A stale review page has nothing of its own to keep but the attestation.
            text = SIGNED_OUT_SAVED if notice["review"] else _("Signed out.") + " " + not_saved
            messages.info(self.request, text)
            return redirect_to_login(self.get_step_url(step))
        if notice.get("again") and (goto or save_exit):
            messages.warning(
                self.request,
                _(
                    "Your entries on “%(step)s” were not saved: the answers saved in the other "
                    "tab or window were kept."
                )
                % {"step": instrument.STEPS_BY_SLUG[step].title},
            )
            return redirect(self.get_step_url(goto) if goto else "intake:home")
        if notice["review"] and not notice.get("answers_unchanged"):
            # The attestation was given for answers this page no longer shows.
            form = self.get_form(step)
        elif goto or save_exit:
            form._errors = ErrorDict()
        self.stale_notice = notice
        response = self.render(form)
        self.storage.keep_stored()
        return response

    def hold_entries(self, step, form, notice):
        """Keep the entries of an overtaken page to show on ``step``; the answers stay as saved."""
        mine = self.get_form_step_data(form)
        tz = timezone.get_current_timezone()
        items = []
        for item in notice["items"]:
            q = instrument.question(item["code"])
            if q.code in form.answers:
                typed = instrument.display_value(q.code, form.answers[q.code], tz)
            else:
                typed = typed_display(q, raw_value(mine, step, q))
            items.append({"label": str(q.label), "typed": typed})
        held = dict(self.storage.extra_data.get(HELD_ENTRIES) or {})
        held[step] = {"at": timezone.now().isoformat(), "items": items}
        self.storage.extra_data[HELD_ENTRIES] = held
        # Nothing else of the state moves: not even formtools' current step.
        self.storage.current_step = (self.draft.wizard_state or {}).get(self.storage.step_key)
        with transaction.atomic():
            self.storage.save()
            audit.record(
                action="intake.draft.saved",
                request=self.request,
                obj=self.draft,
                detail={"step": step, "entries_held": True},
            )

    def held_entries(self, step):
        """Return the held entries of ``step`` (see ``hold_entries``), or None."""
        held = (self.storage.extra_data.get(HELD_ENTRIES) or {}).get(step)
        if not held:
            return None
        return {
            "at": timezone.localtime(dt.datetime.fromisoformat(held["at"])),
            "items": held["items"],
        }

    def store_step(self, step, form):
        """Keep what was typed on ``step`` and recompute the draft's pruned answers."""
        self.storage.set_step_data(step, self.get_form_step_data(form))
        extra = self.storage.extra_data
        if step in (extra.get(HELD_ENTRIES) or {}) and (
            self.request.POST.get("autosave") != AUTOSAVE_IN_BACKGROUND
        ):
            # Saved from the step's page, where the held entries were shown.
            extra[HELD_ENTRIES] = {
                slug: held for slug, held in extra[HELD_ENTRIES].items() if slug != step
            }
        token = self.request.POST.get(PAGE_TOKEN)
        if token and len(token) <= PAGE_TOKEN_LENGTH:
            extra[STEP_WRITERS] = {**(extra.get(STEP_WRITERS) or {}), step: token}
        ack = dict(extra.get(PLAUSIBILITY_ACK, {}))
        ack.update(form.plausibility_pending)
        accepted = {
            code: value
            for code, value in extra.get(PLAUSIBILITY_ACCEPTED, {}).items()
            if code not in instrument.STEPS_BY_SLUG[step].codes
        }
        accepted.update(form.plausibility_accepted)
        extra[PLAUSIBILITY_ACK] = ack
        extra[PLAUSIBILITY_ACCEPTED] = accepted

        step_codes = set(instrument.STEPS_BY_SLUG[step].codes)
        merged = {code: v for code, v in self.answers.items() if code not in step_codes}
        merged.update(form.answers)
        if step != REVIEW:
            # Any change after the attestation needs a fresh attestation.
            merged.pop("staff_attestation", None)
            self.storage.data[self.storage.step_data_key].pop(REVIEW, None)
        before = self.answers
        self.answers = instrument.prune_hidden(merged, self.thresholds)
        self.forget_form_list()
        # Conditions name only earlier questions (test_instrument checks it), so
        # under the same thresholds a save can hide questions of later steps only,
        # and none at all if the answers did not change.
        if extra.get(PRUNED_WITH) != self.thresholds_version:
            self.prune_stored_steps(exclude=step)
            extra[PRUNED_WITH] = self.thresholds_version
            self.tell_removed(before)
        elif self.answers != before:
            self.prune_stored_steps(exclude=step, after=step)

    def tell_removed(self, before):
        """Name the questions whose answers a new threshold version removed (labels only)."""
        kept = instrument.prune_hidden(before, self.thresholds)
        removed = [instrument.question(code).label for code in before if code not in kept]
        if removed:
            messages.warning(
                self.request,
                _(
                    "The clinic's thresholds changed, so the answers to these questions no "
                    "longer apply and were removed: %(questions)s."
                )
                % {"questions": "; ".join(removed)},
            )

    def prune_stored_steps(self, *, exclude, after=None):
        """Drop typed values of questions (and steps) that are now hidden.

        With ``after``, only the steps after that one are checked.
        """
        step_data = self.storage.data[self.storage.step_data_key]
        form_list = self.get_form_list()
        first = -1 if after is None else STEP_INDEX[after]
        for slug in list(step_data):
            if slug == exclude or STEP_INDEX[slug] <= first:
                continue
            if slug not in form_list:
                del step_data[slug]
                continue
            if not may_hold_hidden_answers(slug, step_data[slug]):
                continue
            form = self.get_form(slug, data=self.storage.get_step_data(slug))
            form.is_valid()
            if form.hidden_codes:
                step_data[slug] = self.get_form_step_data(form)

    def persist(self, step, last_step):
        """Save the draft's state and answers, and audit the save (step slug only)."""
        now = timezone.now()
        self.storage.current_step = last_step
        with transaction.atomic():
            self.storage.save(
                answers=instrument.encode_answers(self.answers),
                last_step=last_step,
                updated_at=now,
            )
            audit.record(
                action="intake.draft.saved",
                request=self.request,
                obj=self.draft,
                detail={"step": step},
            )

    def render_done(self, form, **kwargs):
        """Refuse incomplete drafts, re-validate every step, then submit (formtools' contract)."""
        missing = services.incomplete_steps(self.answers, self.thresholds)
        if missing:
            form.add_error(
                None,
                _("Complete these sections before submitting: %(steps)s.")
                % {"steps": ", ".join(step.title for step in missing)},
            )
            return self.render(form)
        for slug in self.get_form_list():
            step_form = self.get_form(slug, data=self.storage.get_step_data(slug))
            if not step_form.is_valid():
                self.storage.current_step = slug
                return redirect(self.get_step_url(slug) + "?check=1")
        return self.done(None)

    def done(self, form_list, **kwargs):
        """Submit the draft through the service and redirect to the screening (never render)."""
        try:
            screening = services.submit_screening(
                draft_id=self.draft.pk, user=self.request.user, request=self.request
            )
        except services.IntakeError as error:
            messages.error(self.request, str(error))
            return redirect(self.get_step_url(REVIEW))
        except Exception as error:  # noqa: BLE001 - the service rolled back; keep the draft
            # Frames only: an exception's message can quote a database row (patient data).
            logger.error(
                "Submitting draft %s failed with %s:\n%s",
                self.draft.pk,
                type(error).__name__,
                "".join(traceback.format_tb(error.__traceback__)),
            )
            messages.error(
                self.request,
                _(
                    "The screening could not be submitted because of a system error. The answers "
                    "are kept in this draft: submit again, and tell the clinic administrator if "
                    "it happens again."
                ),
            )
            return redirect(self.get_step_url(REVIEW))
        # Reset only after a submission: a refused or failed one keeps what was typed.
        self.storage.reset()
        messages.success(
            self.request,
            _(
                "Screening submitted. It is frozen now and waits in the clinicians' review "
                "queue; its summary PDF is on this page."
            ),
        )
        return redirect(screening)

    # -- context -----------------------------------------------------------

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form=form, **kwargs)
        step = self.steps.current
        form_list = list(self.get_form_list())
        # Every step shows the urgent banner; only the review step lists all flags.
        flags = preview_flags(self.answers, self.thresholds, urgent_only=step != REVIEW)
        return_to = self.request.POST.get("return_to") or self.request.GET.get("return")
        context.update(
            draft=self.draft,
            step=instrument.STEPS_BY_SLUG[step],
            step_number=form_list.index(step) + 1,
            step_count=len(form_list),
            sections=self.sections(form_list, step),
            prev_step=self.get_prev_step(step),
            return_to=REVIEW if return_to == REVIEW and step != REVIEW else "",
            patient_name=" ".join(
                part
                for part in (self.answers.get("first_name"), self.answers.get("last_name"))
                if part
            ),
            urgent_flags=urgent_flags(flags),
            suicide_protocol=presentation.suicide_protocol(),
            error_summary=error_summary(form),
            on_review=step == REVIEW,
            step_digest=self.step_digest(step),
            page_token=secrets.token_urlsafe(16),
            stale_notice=self.stale_notice,
            # A page shown again with both versions already shows its own entries.
            held_entries=None if self.stale_notice else self.held_entries(step),
            wizard_config={
                "visibility": visibility(self.thresholds),
                "answers": js_answers(earlier_answers(self.answers, step)),
                "exclusive": sorted(instrument.EXCLUSIVE_KEYS),
            },
        )
        if step == REVIEW:
            context.update(review_context(self, flags))
            context.update(
                answers_digest=answers_digest(self.answers),
                thresholds_version=self.thresholds_version,
            )
        return context

    def sections(self, form_list, current):
        stored = self.storage.data[self.storage.step_data_key]
        # One reverse() for the page, not one per step: only the step slug differs.
        base = self.get_step_url(current)
        base = base[: base.rindex(f"/{current}/") + 1]
        result = []
        for number, slug in enumerate(form_list, start=1):
            step = instrument.STEPS_BY_SLUG[slug]
            complete = slug != REVIEW and instrument.step_complete(
                step, self.answers, self.thresholds
            )
            result.append(
                {
                    "slug": slug,
                    "number": number,
                    "title": step.title,
                    "url": f"{base}{slug}/",
                    "current": slug == current,
                    "complete": complete and slug in stored,
                    "visited": slug in stored,
                }
            )
        return result


CHOICE_TYPES = {
    instrument.YN,
    instrument.YNU,
    instrument.SINGLE,
    instrument.SCALE,
    instrument.MULTI,
}


def summary_lead(label):
    """Return ``label`` as the lead of an error summary line: "Label:", or "Question?" as is."""
    label = label.rstrip().rstrip(".:")
    return label if label.endswith("?") else _("%(label)s:") % {"label": label}


def error_summary(form):
    """Return ``[(anchor id, lead, messages)]`` for the error summary at the top of a step."""
    if not form.is_bound or not form.errors:
        return []
    summary = []
    # Form order, like the page: the step-wide checks add their errors after
    # the fields' own, so errors.items() is not.
    order = {name: index for index, name in enumerate(["__all__", *form.fields])}
    for name, errors in sorted(form.errors.items(), key=lambda item: order.get(item[0], 0)):
        if name == "__all__":
            summary.append(("", "", list(errors)))
            continue
        bound = form[name]
        q = instrument.question(name)
        if q.type == instrument.MED_LIST:
            # One link per error, to the input of the row it is about.
            summary.extend(
                (error["anchor"], summary_lead(q.label), [error["message"]])
                for error in med_list_errors(bound)
            )
            continue
        anchor = bound.id_for_label or bound.auto_id
        if q.type in CHOICE_TYPES:
            anchor = bound.subwidgets[0].id_for_label
        summary.append((anchor, summary_lead(q.label), list(errors)))
    return summary


def derived_rows(answers, thresholds):
    """Return the draft's derived values (section 4) as display rows, or None if not available."""
    try:
        derived = rules.derive(answers, now=timezone.localtime(), thresholds=thresholds)
    except NotImplementedError:
        return None
    return presentation.derived_rows(derived, include_missing=True)


def review_sections(wizard):
    """Return every shown answer grouped by step, with "Unsure" and missing answers marked."""
    answers = wizard.answers
    steps = [instrument.STEPS_BY_SLUG[slug] for slug in wizard.get_form_list() if slug != REVIEW]
    sections = presentation.answer_sections(
        answers,
        tz=timezone.get_current_timezone(),
        include_missing=True,
        thresholds=wizard.thresholds,
        steps=steps,
    )
    return [
        {
            **section,
            "url": wizard.get_step_url(step.slug) + "?return=review",
            "complete": instrument.step_complete(step, answers, wizard.thresholds),
        }
        for step, section in zip(steps, sections, strict=True)
    ]


def plausibility_warnings(wizard):
    """Return messages for accepted out-of-band vitals and the benzodiazepine note (3.7)."""
    warnings = []
    accepted = wizard.storage.extra_data.get(PLAUSIBILITY_ACCEPTED, {})
    for code, value in accepted.items():
        q = instrument.question(code)
        if code in wizard.answers and str(wizard.answers[code]) == value:
            warnings.append(
                _(
                    "%(label)s: %(value)s is outside the usual range (%(min)s to %(max)s); "
                    "it was confirmed on re-entry."
                )
                % {"label": q.label, "value": value, "min": q.plausible_min, "max": q.plausible_max}
            )
    meds = wizard.answers.get("medications") or []
    if "med_benzo_dzeq" in wizard.answers and not any(
        "benzodiazepine" in lexicon.classify(med["name"]) for med in meds
    ):
        warnings.append(
            _(
                "A diazepam-equivalent dose was entered, but no listed medicine was recognized as "
                "a benzodiazepine. Check the spelling of the medication names."
            )
        )
    return warnings


def links_back_from_review(wizard, steps):
    """Return links to ``steps`` whose pages return to the review step when saved."""
    return [
        {"title": step.title, "url": wizard.get_step_url(step.slug) + "?return=review"}
        for step in steps
    ]


def review_context(wizard, flags):
    """Return the extra context of the review step."""
    incomplete = services.incomplete_steps(wizard.answers, wizard.thresholds)
    ordered = sorted(
        flags or (), key=lambda flag: (not flag.urgent, rules.SEVERITY_ORDER[flag.severity])
    )
    return {
        "review_sections": review_sections(wizard),
        "derived_rows": derived_rows(wizard.answers, wizard.thresholds),
        "incomplete_steps": links_back_from_review(wizard, incomplete),
        "held_steps": links_back_from_review(
            wizard,
            [
                step
                for step in instrument.STEPS
                if step.slug in (wizard.storage.extra_data.get(HELD_ENTRIES) or {})
                and step.slug in wizard.get_form_list()
            ],
        ),
        "flags": ordered,
        "flags_available": flags is not None,
        "plausibility_warnings": plausibility_warnings(wizard),
    }
