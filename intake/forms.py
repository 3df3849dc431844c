"""Wizard step forms, built from the instrument definition (one factory, no question twice).

Validation follows INSTRUMENT.md 2.3-2.5. Every field is optional at the Django
level: whether a question is required depends on whether it is shown, and that
is decided per submission by walking the step's questions in order.
"""

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import cache

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout
from crispy_forms.utils import TEMPLATE_PACK
from django import forms
from django.core.exceptions import ValidationError
from django.template.loader import get_template, render_to_string
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from intake import instrument

INLINE_RADIO_TYPES = {instrument.YN, instrument.YNU, instrument.SCALE}
TEXTAREA_MIN_LENGTH = 500
# Bounds of every date and date-time input. Chromium lets a year field take as many
# digits as the bounds allow (six without them: "11222026" then a time typed quickly
# made the year 202608 and the value empty); 4-digit bounds keep it to four. The
# form is novalidate, so the bounds never stop a submission: the server's messages
# ("cannot be in the future", "before the date of birth") stay the ones shown.
EARLIEST_DATE = "1900-01-01"
LATEST_DATE = "9999-12-31"


def date_input_limits(kind: str, *, up_to_today: bool, today: dt.date) -> dict[str, str]:
    """Return the ``min`` and ``max`` attributes of a date (or date-time) input.

    A question about the past (``not_future`` or ``past_event``) ends on the
    screening date in the clinic's time zone; a date-time one at its last minute,
    so that a page left open for a while never marks the current time out of range.
    """
    latest = today.isoformat() if up_to_today else LATEST_DATE
    if kind == instrument.DATETIME:
        return {"min": f"{EARLIEST_DATE}T00:00", "max": f"{latest}T23:59"}
    return {"min": EARLIEST_DATE, "max": latest}


def is_empty(value):
    """Return whether a cleaned value counts as "not answered" (2.2)."""
    return value is None or value == "" or value == []


# ---------------------------------------------------------------------------
# Fields


class StrictIntegerField(forms.IntegerField):
    """An integer field that rejects a fraction (``72.5``) instead of truncating it.

    ``72.0`` is exactly 72, so it is accepted as 72: nothing is rounded.
    """

    default_error_messages = {"invalid": gettext_lazy("Enter a whole number.")}
    pattern = re.compile(r"^([+-]?\d+)(?:\.0*)?$")

    def to_python(self, value):
        if value in self.empty_values:
            return None
        match = self.pattern.match(str(value).strip())
        if not match:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return int(match.group(1))
        except ValueError:  # more digits than Python converts (about 4,300)
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class StrictDecimalField(forms.DecimalField):
    """A decimal field that rejects extra decimal places and quantizes to the stated places."""

    def __init__(self, *, decimal_places, **kwargs):
        super().__init__(decimal_places=decimal_places, max_digits=None, **kwargs)
        self.quantum = Decimal(1).scaleb(-decimal_places)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if not number.is_finite():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        if number.as_tuple().exponent < self.quantum.as_tuple().exponent:
            # "80.10" is exactly 80.1: zeros beyond the stated places are dropped.
            # Any other digit there is left for the validator to reject, never rounded.
            try:
                exact = number.quantize(self.quantum)
            except InvalidOperation:  # too many digits to quantize: the validator decides
                return number
            if exact == number:
                return exact
        return number

    def clean(self, value):
        number = super().clean(value)
        return None if number is None else number.quantize(self.quantum)


def attrs_markup(attrs):
    """Return ``attrs`` as Django's ``attrs.html`` writes them (False left out, True bare)."""
    return "".join(
        format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value)
        for name, value in attrs.items()
        if value is not False
    )


class PythonMarkup:
    """Write the widget's markup in Python, byte for byte what Django's template writes.

    Django renders every ``<input>`` through two templates (the widget's, which
    includes ``input.html``, which includes ``attrs.html``): about a millisecond
    of a step like "Vitals" for a one-line tag. The context is still Django's
    own (``get_context``: value formatting, ``checked``, aria attributes), so
    only the last step changes; ``tests/test_forms.py`` compares the two on
    every such question, blank, typed and invalid.
    """

    def render(self, name, value, attrs=None, renderer=None):
        return mark_safe(self.markup(self.get_context(name, value, attrs)["widget"]))


class PythonInput(PythonMarkup):
    def markup(self, widget):
        value = "" if widget["value"] is None else format_html(' value="{}"', widget["value"])
        return (
            format_html('<input type="{}" name="{}"', widget["type"], widget["name"])
            + value
            + attrs_markup(widget["attrs"])
            + ">"
        )


class TextInput(PythonInput, forms.TextInput):
    pass


class NumberInput(PythonInput, forms.NumberInput):
    pass


class DateInput(PythonInput, forms.DateInput):
    pass


class DateTimeInput(PythonInput, forms.DateTimeInput):
    pass


class CheckboxInput(PythonInput, forms.CheckboxInput):
    pass


class Textarea(PythonMarkup, forms.Textarea):
    def markup(self, widget):
        value = format_html("{}", widget["value"]) if widget["value"] else ""
        return (
            format_html('<textarea name="{}"', widget["name"])
            + attrs_markup(widget["attrs"])
            + ">\n"
            + value
            + "</textarea>"
        )


# A medication row's index in its posted names (``medications-3-name``): ASCII digits,
# a few of them. A forged index ("²", Arabic-Indic digits, 5,000 digits that int() refuses)
# names no row and is ignored like any other unknown key.
MED_ROW_INDEX = r"[0-9]{1,4}"


class MedListWidget(forms.Widget):
    """Repeating medication rows: ``<name>-<i>-name``, ``-dose``, ``-frequency``."""

    template_name = "intake/widgets/med_list.html"
    blank_rows = 2
    min_rows = 3

    def _render(self, template_name, context, renderer=None):
        # Project templates are not on the default form renderer's path.
        return mark_safe(render_to_string(template_name, context))

    def value_from_datadict(self, data, files, name):
        pattern = re.compile(rf"^{re.escape(name)}-({MED_ROW_INDEX})-(name|dose|frequency)$")
        rows = {}
        for key in data:
            match = pattern.match(key)
            if match:
                index = int(match.group(1))
                rows.setdefault(index, {"name": "", "dose": "", "frequency": ""})
                rows[index][match.group(2)] = data.get(key) or ""
        return [rows[index] for index in sorted(rows)]

    def value_omitted_from_data(self, data, files, name):
        return not any(key.startswith(f"{name}-") for key in data)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        # ``med_list_errors()`` of the bound field, passed in by ``Question.inner``.
        errors = context["widget"]["attrs"].pop("med_errors", None) or []
        rows = [dict(row) for row in (value or []) if isinstance(row, dict)]
        # Exactly ``blank_rows`` blank rows at the end, however many were posted:
        # a page shown again (an error, a saved step) must not grow by two each
        # time. Rows before the last typed one keep their places ("Row 3" errors).
        while rows and not any(str(part or "").strip() for part in rows[-1].values()):
            rows.pop()
        total = max(len(rows) + self.blank_rows, self.min_rows)
        rows += [{"name": "", "dose": "", "frequency": ""}] * (total - len(rows))
        context["widget"]["rows"] = [
            {"index": index, **row, "errors": row_error_ids(errors, index)}
            for index, row in enumerate(rows[: instrument.MED_MAX_ROWS])
        ]
        context["widget"]["max_rows"] = instrument.MED_MAX_ROWS
        # The wizard prefixes each field with its step: "<step>-<code>".
        context["widget"]["step"] = name.rsplit("-", 1)[0]
        context["widget"]["name_max"] = instrument.MED_NAME_MAX
        context["widget"]["field_max"] = instrument.MED_FIELD_MAX
        return context


def row_error_ids(errors, index):
    """Return ``{part: "id id"}``: the ids of the errors about each input of row ``index``."""
    ids = {}
    for error in errors:
        if error["row"] == index:
            ids.setdefault(error["part"], []).append(error["id"])
    return {part: " ".join(found) for part, found in ids.items()}


class TextField(forms.CharField):
    """A text field that counts a line break as one character, as the browser does.

    Browsers post a typed line break as CR LF, so a 500-character limit the
    ``maxlength`` attribute let through would be refused here as 501 or more.
    """

    def to_python(self, value):
        if isinstance(value, str):
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        return super().to_python(value)


class MedListField(forms.Field):
    """The medication list of INSTRUMENT.md 2.4 (blank rows dropped, limits enforced)."""

    widget = MedListWidget

    def to_python(self, value):
        rows = []
        errors = []
        for position, row in enumerate(value or [], start=1):
            cleaned = {key: str(row.get(key) or "").strip() for key in instrument.MED_ROW_KEYS}
            if not any(cleaned.values()):
                continue
            # Each error names its row and input, so the page can link to and mark them.
            nul = [key for key, part in cleaned.items() if "\x00" in part]
            if nul:
                errors.append(
                    ValidationError(
                        _("Row %(row)d: null characters are not allowed."),
                        code="med_row",
                        params={"row": position, "part": nul[0]},
                    )
                )
            if not cleaned["name"]:
                errors.append(
                    ValidationError(
                        _("Row %(row)d: enter the medicine's name, or clear the row."),
                        code="med_row",
                        params={"row": position, "part": "name"},
                    )
                )
            elif len(cleaned["name"]) > instrument.MED_NAME_MAX:
                errors.append(
                    ValidationError(
                        _("Row %(row)d: the name can be at most %(max)d characters."),
                        code="med_row",
                        params={"row": position, "part": "name", "max": instrument.MED_NAME_MAX},
                    )
                )
            for key, label in (("dose", _("dose")), ("frequency", _("how often"))):
                if len(cleaned[key]) > instrument.MED_FIELD_MAX:
                    errors.append(
                        ValidationError(
                            _("Row %(row)d: %(what)s can be at most %(max)d characters."),
                            code="med_row",
                            params={
                                "row": position,
                                "part": key,
                                "what": label,
                                "max": instrument.MED_FIELD_MAX,
                            },
                        )
                    )
            rows.append(cleaned)
        if len(rows) > instrument.MED_MAX_ROWS:
            errors.append(_("List at most %(max)d medicines.") % {"max": instrument.MED_MAX_ROWS})
        if errors:
            raise ValidationError(errors)
        return rows


def med_list_errors(bound):
    """Return the medication list's errors: ``{"id", "anchor", "row", "part", "message"}`` each.

    ``row`` is the 0-based index of the row an error is about (row 0 for an
    error about the whole list), ``part`` its input ("name", "dose" or
    "frequency"), ``anchor`` that input's id and ``id`` the error's own.
    """
    result = []
    for number, error in enumerate(bound.errors.as_data(), start=1):
        params = error.params or {}
        row = params.get("row", 1) - 1
        part = params.get("part", "name")
        for message in error:
            result.append(
                {
                    "id": f"{bound.auto_id}_error_{number}",
                    "anchor": f"{bound.auto_id}-{row}-{part}",
                    "row": row,
                    "part": part,
                    "message": message,
                }
            )
    return result


def range_messages(q):
    """Return a number question's out-of-range messages: the whole range, either side."""
    if q.min_value is None or q.max_value is None:
        return {}
    message = _("Enter a number from %(min)s to %(max)s.") % {
        "min": q.min_value,
        "max": q.max_value,
    }
    return {"min_value": message, "max_value": message}


def make_field(q):
    """Return the form field for question ``q``."""
    label = q.label
    if not q.required and q.type != instrument.BOOL:
        label = _("%(label)s (optional)") % {"label": q.label}
    common = {"label": label, "required": False, "help_text": q.help_text}
    if q.type in (instrument.YN, instrument.YNU, instrument.SINGLE):
        return forms.ChoiceField(
            choices=[(c.key, c.label) for c in q.choices], widget=forms.RadioSelect, **common
        )
    if q.type == instrument.SCALE:
        return forms.TypedChoiceField(
            choices=[(c.key, f"{c.label} ({c.key})") for c in q.choices],
            coerce=int,
            empty_value=None,
            widget=forms.RadioSelect,
            **common,
        )
    if q.type == instrument.MULTI:
        return forms.MultipleChoiceField(
            choices=[(c.key, c.label) for c in q.choices],
            widget=forms.CheckboxSelectMultiple(attrs={"data-exclusive-group": q.code}),
            **common,
        )
    if q.type == instrument.INT:
        return StrictIntegerField(
            min_value=q.min_value,
            max_value=q.max_value,
            error_messages=range_messages(q),
            widget=NumberInput(attrs={"inputmode": "numeric", "step": "1"}),
            **common,
        )
    if q.type == instrument.DECIMAL:
        return StrictDecimalField(
            decimal_places=q.decimal_places,
            min_value=q.min_value,
            max_value=q.max_value,
            error_messages=range_messages(q),
            widget=NumberInput(attrs={"inputmode": "decimal"}),
            **common,
        )
    if q.type == instrument.DATE:
        return forms.DateField(
            input_formats=["%Y-%m-%d"],
            widget=DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            **common,
        )
    if q.type == instrument.DATETIME:
        return forms.DateTimeField(
            input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
            widget=DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            **common,
        )
    if q.type == instrument.TEXT:
        widget = (
            Textarea(attrs={"rows": 3})
            if (q.max_length or 0) >= TEXTAREA_MIN_LENGTH
            else TextInput(attrs={"autocomplete": "off"})
        )
        return TextField(max_length=q.max_length, strip=True, widget=widget, **common)
    if q.type == instrument.BOOL:
        return forms.BooleanField(widget=CheckboxInput, **common)
    if q.type == instrument.MED_LIST:
        return MedListField(**common)
    raise ValueError(f"Unknown question type {q.type!r}")


# ---------------------------------------------------------------------------
# Step form


def plausibility_key(value):
    """Return the string a plausibility acknowledgement is remembered by."""
    return str(value)


def decide(condition, known, unsettled, thresholds):
    """Return whether ``condition`` holds for ``known``, or None if it waits on ``unsettled``.

    Three-valued (Kleene): "any" holds once one part holds, whatever the unsettled
    answers turn out to be; "all" fails once one part fails; a part that reads an
    unsettled answer is unknown.
    """
    if isinstance(condition, instrument.AnyOf | instrument.AllOf):
        results = [decide(part, known, unsettled, thresholds) for part in condition.conditions]
        deciding = isinstance(condition, instrument.AnyOf)
        if deciding in results:
            return deciding
        return None if None in results else not deciding
    if isinstance(condition, instrument.Not):
        result = decide(condition.condition, known, unsettled, thresholds)
        return None if result is None else not result
    if condition.codes() & unsettled:
        return None
    return condition(known, thresholds)


class StepForm(forms.Form):
    """One wizard step. Subclasses are built by ``step_form_class``; do not subclass by hand.

    ``context_answers`` are the answers of the steps before this one (typed),
    ``thresholds`` the values in force, ``acknowledged`` the plausibility
    warnings already shown (code -> value), ``now`` the current time.
    """

    step = None

    def __init__(
        self, *args, context_answers=None, thresholds=None, acknowledged=None, now=None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.context_answers = dict(context_answers or {})
        self.thresholds = thresholds
        self.acknowledged = dict(acknowledged or {})
        self.now = now or timezone.now()
        self.answers = {}
        self.hidden_codes = set()
        self.undecided_codes = set()
        self.plausibility_pending = {}
        self.plausibility_accepted = {}
        self.helper = step_form_helper(type(self).step.slug)

    @property
    def screening_date(self):
        return timezone.localtime(self.now).date()

    def clean(self):
        """Validate the shown questions in order, reporting at once all the server can know.

        ``known`` holds the answers the step's conditions read: the valid ones, and
        a vital sign waiting only for its plausibility confirmation (its value is
        read, only not yet accepted). So the questions such a value brings up (the
        repeat blood pressure) are required, and the checks against it (diastolic
        lower than systolic) made, with its warning, not one "Next" later. An answer
        with any other error, or a required one left blank, is unsettled: a question
        whose "shown when" then depends on it is undecided (see ``shown``), neither
        required nor hidden; what was typed in it is checked, against the other
        typed answers too (``compared``), and kept.
        """
        cleaned = super().clean()
        known = dict(self.context_answers)
        compared = dict(known)
        unsettled = set()
        answers = {}
        self.hidden_codes = set()
        self.undecided_codes = set()
        for q in self.step.questions:
            name = q.code
            shown = self.shown(q, known, unsettled)
            if shown is False:
                self.hidden_codes.add(name)
                self._errors.pop(name, None)
                cleaned.pop(name, None)
                continue
            if shown is None:
                self.undecided_codes.add(name)
                unsettled.add(name)
            if name in self._errors:
                unsettled.add(name)
                continue
            value = cleaned.get(name)
            if q.type == instrument.BOOL:
                value = bool(value)
                if q.required and not value and shown:
                    self.add_error(name, _("Tick this box to continue."))
                    unsettled.add(name)
                    continue
            elif is_empty(value):
                if q.required and shown:
                    self.add_error(name, self.required_message(q))
                    unsettled.add(name)
                continue
            error = self.check(q, value, compared)
            if error:
                self.add_error(name, error)
                if name not in self.plausibility_pending:
                    unsettled.add(name)
                    continue
            compared[name] = value
            if shown:
                known[name] = value
                if not error:
                    answers[name] = value
        self.answers = answers
        return cleaned

    def shown(self, q, known, unsettled):
        """Return whether question ``q`` is shown: True, False, or None while undecided.

        Undecided only where the old two-valued reading hid the question: a question
        it showed (a ``not (...)`` of a blank answer) stays asked as before.
        """
        if q.shown_when is None:
            return True
        if q.shown_when(known, self.thresholds):
            return True
        if unsettled and decide(q.shown_when, known, unsettled, self.thresholds) is None:
            return None
        return False

    def required_message(self, q):
        if q.type == instrument.MED_LIST:
            return _("List at least one medicine, or tick “Patient takes no medications”.")
        if q.type in (instrument.YN, instrument.YNU, instrument.SINGLE, instrument.SCALE):
            return _("Choose an answer.")
        if q.type == instrument.MULTI:
            return _("Tick at least one box.")
        return _("Enter an answer.")

    def check(self, q, value, kept):
        """Return an error message for a shown, non-empty answer, or None."""
        if q.type == instrument.MULTI:
            exclusive = [key for key in value if key in instrument.EXCLUSIVE_KEYS]
            if exclusive and len(value) > 1:
                label = q.choice_label(exclusive[0])
                return _("“%(choice)s” cannot be combined with other choices.") % {"choice": label}
            order = [c.key for c in q.choices]
            value[:] = sorted(dict.fromkeys(value), key=order.index)
        if q.type == instrument.TEXT and q.min_length and len(value) < q.min_length:
            return _("Enter an answer.")
        if q.less_than and q.less_than in kept and value >= kept[q.less_than]:
            return _("Must be lower than “%(other)s” (%(value)s).") % {
                "other": instrument.question(q.less_than).label,
                "value": kept[q.less_than],
            }
        if q.type == instrument.DATE:
            return self.check_date(q, value, kept)
        if q.type == instrument.DATETIME:
            if q.not_future and value > self.now:
                return _("This cannot be in the future.")
            if q.past_event and self.before_birth(timezone.localdate(value), kept):
                return _("This date cannot be before the date of birth.")
        if q.plausible_min is not None and not (q.plausible_min <= value <= q.plausible_max):
            key = plausibility_key(value)
            if self.acknowledged.get(q.code) == key:
                self.plausibility_accepted[q.code] = key
            else:
                self.plausibility_pending[q.code] = key
                return _(
                    "%(value)s is outside the usual range (%(min)s to %(max)s). Check the "
                    "value; if it is correct, save again with the same value to accept it."
                ) % {"value": value, "min": q.plausible_min, "max": q.plausible_max}
        return None

    def check_date(self, q, value, kept):
        today = self.screening_date
        if q.code == "date_of_birth":
            if value > today:
                return _("The date of birth cannot be in the future.")
            age = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
            if not 0 <= age <= 120:
                return _("Age must be between 0 and 120 years at the screening date.")
        if (q.past_event or q.not_future) and value > today:
            return _("This date cannot be after the screening date (%(date)s).") % {
                "date": today.isoformat()
            }
        if q.past_event and self.before_birth(value, kept):
            return _("This date cannot be before the date of birth.")
        return None

    @staticmethod
    def before_birth(day, kept):
        dob = kept.get("date_of_birth")
        return isinstance(dob, dt.date) and day < dob


QUESTION_TEMPLATES = {
    instrument.MED_LIST: "intake/fields/med_list.html",
    instrument.BOOL: "intake/fields/checkbox.html",
    **dict.fromkeys(
        (instrument.YN, instrument.YNU, instrument.SINGLE, instrument.SCALE, instrument.MULTI),
        "intake/fields/choices.html",
    ),
}
INPUT_TEMPLATE = "intake/fields/input.html"
CHOICES_TEMPLATE = "intake/fields/choices.html"
# Stands for a question's input(s) in its cached markup (never in a label: NUL).
INNER_MARKER = mark_safe("\x00inputs\x00")


class Question(Field):
    """One question's block: the show/hide wrapper and its field, in one compact template.

    The bootstrap5 pack renders a field through several nested templates (and one
    more per radio option); a step like "Mood" has 23 radio groups, so the pack's
    templates were most of a step's server time. One template per widget kind
    keeps the markup (labels, fieldset and legend, aria-describedby, error and
    help ids) at a fraction of the cost.
    """

    def __init__(self, q):
        css_class = {instrument.BOOL: "form-check-input", instrument.MED_LIST: None}.get(
            q.type, "form-control"
        )
        super().__init__(
            q.code, template=QUESTION_TEMPLATES.get(q.type, INPUT_TEMPLATE), css_class=css_class
        )
        css = "question"
        if q.type in (instrument.SCALE, instrument.SINGLE):
            css += " question-choices"
        self.question = {
            "code": q.code,
            "type": q.type,
            "css": css,
            "inline": q.type in INLINE_RADIO_TYPES,
            "input_type": "checkbox" if q.type == instrument.MULTI else "radio",
            "exclusive": q.type == instrument.MULTI,
            "up_to_today": q.not_future or q.past_event,
        }
        self._options = {}
        self._shells = {}

    def render(self, form, context, template_pack=TEMPLATE_PACK, **kwargs):
        code = self.question["code"]
        bound = form[code]
        if hasattr(form, "rendered_fields"):
            form.rendered_fields.add(code)
        if bound.errors or self.question["type"] == instrument.MED_LIST:
            return self.render_template(bound, self.inner(bound))
        # Without errors a question's markup is fixed but for its input(s): render
        # the template once around a marker, then only the input(s) per request.
        key = (bound.html_name, bound.auto_id, str(bound.label), str(bound.help_text))
        shell = self._shells.get(key)
        if shell is None:
            shell = self._shells[key] = self.render_template(bound, INNER_MARKER).split(
                INNER_MARKER
            )
        return SafeString(self.inner(bound).join(shell))

    def render_template(self, bound, inner):
        """Return the question's template rendered with ``inner`` as its input(s)."""
        context = {"field": bound, "question": self.question, "inner": inner}
        if self.question["type"] == instrument.MED_LIST and bound.errors:
            context["med_errors"] = med_list_errors(bound)
        return get_template(self.template).render(context)

    def inner(self, bound):
        """Return the question's input(s): the option list, or the widget."""
        if self.template == CHOICES_TEMPLATE:
            return self.options(bound)
        attrs = self.attrs
        if attrs and bound.errors:
            attrs = {**attrs, "class": f"{attrs['class']} is-invalid"}
        kind = self.question["type"]
        if kind == instrument.MED_LIST and bound.errors:
            attrs = {**(attrs or {}), "med_errors": med_list_errors(bound)}
        if kind in (instrument.DATE, instrument.DATETIME):
            limits = date_input_limits(
                kind, up_to_today=self.question["up_to_today"], today=bound.form.screening_date
            )
            attrs = {**(attrs or {}), **limits}
        return bound.as_widget(attrs=attrs)

    def options(self, bound):
        """Return the group's inputs, each beside its label, as HTML.

        A template loop (or ``format_html``) costs more per option than the rest
        of the question, and "Mood" has 92 options; the markup of each option is
        fixed for a given field name, id and error state, so it is built once
        and only ``checked`` is decided per request, the way Django's
        ``ChoiceWidget`` decides it.
        """
        invalid = bool(bound.errors)
        key = (bound.html_name, bound.auto_id, invalid, get_language())
        parts = self._options.get(key)
        if parts is None:
            parts = self._options[key] = self.option_parts(bound, invalid)
        selected = set(bound.field.widget.format_value(bound.value()))
        return SafeString(
            "\n".join(
                before + (" checked" if value in selected else "") + after
                for value, before, after in parts
            )
        )

    def option_parts(self, bound, invalid):
        """Return ``(value, markup before "checked", markup after)`` for every option."""
        q = self.question
        wrapper = "form-check form-check-inline" if q["inline"] else "form-check"
        css = "form-check-input is-invalid" if invalid else "form-check-input"
        tail = format_html(' data-exclusive-group="{}"', q["code"]) if q["exclusive"] else ""
        if invalid:
            tail += ' aria-invalid="true"'
        parts = []
        for option in bound.subwidgets:
            value = str(option.data["value"])
            before = format_html(
                '<div class="{}"><input type="{}" class="{}" name="{}" value="{}" id="{}"',
                wrapper,
                q["input_type"],
                css,
                option.data["name"],
                value,
                option.id_for_label,
            )
            after = tail + format_html(
                '> <label for="{}" class="form-check-label">{}</label></div>',
                option.id_for_label,
                option.choice_label,
            )
            parts.append((value, str(before), str(after)))
        return parts


# Headings over the instruments that share a step (the "Mood" step runs PHQ-9,
# GAD-7 and the C-SSRS screener one after another), placed before their first item.
GROUP_HEADINGS = {
    "phq9_1": (
        gettext_lazy("Depression (PHQ-9)"),
        gettext_lazy("Over the past 2 weeks, how often has the patient been bothered by:"),
    ),
    "gad7_1": (
        gettext_lazy("Anxiety (GAD-7)"),
        gettext_lazy("Over the past 2 weeks, how often has the patient been bothered by:"),
    ),
    "cssrs_1": (
        gettext_lazy("Suicide-risk screen (C-SSRS screener)"),
        gettext_lazy("Questions 1 to 5 ask about the past month, then lifetime behavior."),
    ),
}


class GroupHeading:
    """A heading and its one-line stem over a group of questions (no template to render)."""

    def __init__(self, code, title, stem):
        self.fields = []
        self.markup = format_html(
            '<div class="question-group" id="group-{}"><h2 class="h4 mb-1">{}</h2>'
            '<p class="text-body-secondary mb-0">{}</p></div>',
            code,
            title,
            stem,
        )

    def render(self, form, context, template_pack=TEMPLATE_PACK, **kwargs):
        return self.markup


@cache
def step_form_helper(slug):
    """Return the crispy helper of step ``slug``: one ``Question`` per question, in order.

    Built once per step: the helper holds no per-request state.
    """
    step = instrument.STEPS_BY_SLUG[slug]
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True
    parts = []
    for q in step.questions:
        if q.code in GROUP_HEADINGS:
            parts.append(GroupHeading(q.code, *GROUP_HEADINGS[q.code]))
        parts.append(Question(q))
    helper.layout = Layout(*parts)
    return helper


@cache
def step_form_class(slug):
    """Return the form class of wizard step ``slug``."""
    step = instrument.STEPS_BY_SLUG[slug]
    attrs = {"step": step, **{q.code: make_field(q) for q in step.questions}}
    form_class = type(f"{slug.title().replace('_', '')}StepForm", (StepForm,), attrs)
    form_class.base_fields = SharedFields(form_class.base_fields)
    return form_class


class SharedFields(dict):
    """A step form's fields, shared by its instances instead of deep-copied for each.

    Django deep-copies ``base_fields`` for every form so that an instance may
    change its fields; step forms never do (labels, choices and widgets come
    from the instrument; per-request state lives on the form), and the copy
    was a tenth of a step's server time. ``tests/test_forms.py`` checks that
    validating and rendering leave the shared fields unchanged.
    """

    def __deepcopy__(self, memo):
        return dict(self)
