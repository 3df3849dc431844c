"""Forms of the review panel: sign a review, add an addendum, unlock, edit thresholds, users."""

import secrets
from types import MappingProxyType

from django import forms
from django.contrib.admin.forms import AdminPasswordChangeForm as OwnPasswordForm
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    AdminUserCreationForm,
    ReadOnlyPasswordHashWidget,
    UserChangeForm,
)
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import Group
from django.core import validators
from django.forms.boundfield import BoundField
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.functional import lazy
from django.utils.safestring import mark_safe
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from intake import accounts, reviews, thresholds
from intake.models import Determination, Role
from intake.roles import ADMIN_ROLES, user_role

# A hidden field that is missing or garbled: a page kept from before it existed, or tampered with.
STALE_FORM = _("This form is out of date; nothing was saved. Open the page again.")

SIGNATURE_HELP = _("Re-enter your own password. It signs the entry with your name and the time.")


def field_anchor(field):
    """Return the id an error summary links to for bound ``field``: its input, or a group's first.

    A radio group has no input of its own to go to (Django's ``id_for_label`` is empty).
    """
    if field.use_fieldset and field.subwidgets:
        return field.subwidgets[0].id_for_label
    return field.id_for_label


def error_summary(form, *, order=(), labels=None):
    """Return ``[(anchor id, label, message)]`` for ``form``'s errors, in page order.

    The form's own errors and its hidden fields' come first, without an anchor (no field
    shows them); then each visible field's, in ``order`` (the field names as the page lays
    them out), any others in the form's order. ``labels`` names the fields whose label is
    a sentence.
    """
    labels = labels or {}
    hidden = [error for field in form.hidden_fields() for error in field.errors]
    summary = [("", "", error) for error in [*form.non_field_errors(), *hidden]]
    visible = {field.name: field for field in form.visible_fields()}
    names = [name for name in order if name in visible]
    names += [name for name in visible if name not in names]
    for name in names:
        field = visible[name]
        label = labels.get(name, field.label)
        summary.extend((field_anchor(field), label, error) for error in field.errors)
    return summary


class ErrorSummaryMixin:
    """A form whose page lists its errors at the top, each linked to its field."""

    # The error summary's name for a field whose label is a sentence.
    summary_labels = MappingProxyType({})

    def error_summary(self):
        """Return ``[(anchor id, label, message)]`` in page order; top errors have no anchor."""
        return error_summary(self, labels=self.summary_labels)


class PanelBoundField(BoundField):
    """A review panel field: every input names its help and error text, in a group too."""

    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        # Django describes a radio group on its fieldset only, which screen readers
        # announce unevenly; on each input the error is read with the input in focus.
        if self.use_fieldset and not attrs.get("aria-describedby") and self.aria_describedby:
            attrs["aria-describedby"] = self.aria_describedby
        return attrs


class PanelForm(ErrorSummaryMixin, forms.Form):
    """A review panel form; its hidden fields' errors are shown at the top of the page."""

    bound_field_class = PanelBoundField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.summary_labels = {}


def length_help(help_text, limit):
    """Return ``help_text`` followed by "At most N characters.", both put together when shown."""
    at_most = lazy(
        lambda: (
            gettext("At most %(limit)s characters.")
            % {"limit": number_format(limit, force_grouping=True)}
        ),
        str,
    )()
    return format_lazy("{} {}", help_text, at_most)


class PanelTextField(forms.CharField):
    """Free text typed in the panel: at most ``max_length`` characters, as the browser counts them.

    The textarea gets ``maxlength``. A browser counts a typed line break as one
    character but posts it as two (CR LF); it is kept as one, so text the page let
    through is never refused for its line breaks. The service checks the same limit.
    """

    def __init__(self, *, max_length, help_text="", **kwargs):
        super().__init__(
            max_length=max_length, help_text=length_help(help_text, max_length), **kwargs
        )
        # validate() says it with the count written as people read it ("10,000").
        self.validators = [
            validator
            for validator in self.validators
            if not isinstance(validator, validators.MaxLengthValidator)
        ]

    def to_python(self, value):
        if isinstance(value, str):
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        return super().to_python(value)

    def validate(self, value):
        super().validate(value)
        if value and len(value) > self.max_length:
            raise forms.ValidationError(
                reviews.too_long_message(limit=self.max_length, length=len(value)),
                code="max_length",
            )


def signature_field():
    """Return the password field that signs an entry (never re-displayed)."""
    return forms.CharField(
        label=_("Your password (signature)"),
        help_text=SIGNATURE_HELP,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": _("Re-enter your password to sign.")},
    )


# Any number of at most 18 digits fits a 64-bit key; no id or count the panel posts has more.
ID_MAX_DIGITS = 18


def parse_id(value):
    """Return ``value`` as a number if it is 1 to 18 ASCII digits and nothing else, or None.

    A page of the panel posts its ids and counts in ASCII digits. ``str.isdigit`` also
    takes "²" (which ``int`` refuses) and Arabic-Indic digits (which ``int`` reads as
    another number), and ``int`` refuses more than 4,300 digits: a forged post must
    name nothing rather than end in a server error.
    """
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    return int(value) if len(value) <= ID_MAX_DIGITS else None


class PageStateField(forms.IntegerField):
    """A hidden number naming what a form's page showed: ASCII digits, else the form is stale."""

    widget = forms.HiddenInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # set in code (initial data), not posted
        number = parse_id(value)
        if number is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return number


def page_state_field(**kwargs):
    """Return a hidden number naming what a form's page showed; missing or bad, it is stale."""
    return PageStateField(
        error_messages=dict.fromkeys(("required", "invalid", "min_value"), STALE_FORM),
        **kwargs,
    )


WITHDRAWN_OPTION = _(
    "This option was withdrawn by a clinic admin after the form was opened; choose another."
)


class ActiveDeterminationField(forms.ModelChoiceField):
    """The active determination options; one withdrawn since the form was shown says so."""

    def to_python(self, value):
        if isinstance(value, str) and value not in self.empty_values and parse_id(value) is None:
            # Not an id the page could have posted ("²", "١٢", 5,000 digits): no option.
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            )
        try:
            return super().to_python(value)
        except forms.ValidationError as error:
            withdrawn = Determination.objects.filter(active=False)
            if (
                error.code == "invalid_choice"
                and (pk := parse_id(value)) is not None
                and withdrawn.filter(pk=pk).exists()
            ):
                raise forms.ValidationError(WITHDRAWN_OPTION, code="withdrawn") from error
            raise


class RecordReviewForm(PanelForm):
    """Acknowledge each review flag, record the clinician's determination and note, sign."""

    determination = ActiveDeterminationField(
        label=_("Your determination"),
        help_text=_("Your own decision, recorded as you choose it. The app suggests none."),
        queryset=Determination.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
        error_messages={"required": _("Choose your determination.")},
    )
    note = PanelTextField(
        label=_("Review note"),
        help_text=_("What you considered, including your plan for each flag."),
        max_length=reviews.NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={"required": _("Write a review note.")},
    )

    # How many reviews (signed or voided) the screening had when the form was shown.
    reviews_seen = page_state_field(min_value=0)

    def __init__(self, *args, flags=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.init_kwargs = {"flags": flags}
        self.fields["determination"].queryset = Determination.objects.filter(active=True)
        self.flags = list(flags)
        self.ack_fields = []
        for flag in self.flags:
            name = f"ack_{flag.rule_id}"
            self.fields[name] = forms.BooleanField(
                label=_("I have read %(rule)s and considered it.") % {"rule": flag.rule_id},
                required=True,
                error_messages={"required": _("Acknowledge this flag.")},
            )
            self.summary_labels[name] = _("Flag %(rule)s") % {"rule": flag.rule_id}
            self.ack_fields.append((flag, name))
        self.fields["password"] = signature_field()
        self.order_fields([name for _flag, name in self.ack_fields])

    def acknowledgement_rows(self):
        """Return (flag, bound field) pairs in flag order, for the template."""
        return [(flag, self[name]) for flag, name in self.ack_fields]

    def acknowledged_rule_ids(self):
        """Return the rule ids the clinician ticked."""
        return [flag.rule_id for flag, name in self.ack_fields if self.cleaned_data.get(name)]


def review_field():
    """Return the hidden id of the signed review a form was opened on."""
    return page_state_field()


class AddendumForm(PanelForm):
    """Append a signed addendum."""

    text = PanelTextField(
        label=_("Addendum"),
        help_text=_("Appended under the signed review; nothing earlier is changed."),
        max_length=reviews.NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={"required": _("Write the addendum text.")},
    )
    password = signature_field()
    form_token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    review = review_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["form_token"].initial = secrets.token_urlsafe(16)


def rebound(form, **values):
    """Return ``form`` bound again with ``values`` replacing its hidden state (typed text kept)."""
    data = form.data.copy()
    for name, value in values.items():
        data[name] = "" if value is None else str(value)
    again = type(form)(data, **getattr(form, "init_kwargs", {}))
    again.is_valid()
    return again


class UnlockForm(PanelForm):
    """Give the mandatory reason for voiding the signed review the page shows."""

    review = review_field()

    reason = PanelTextField(
        label=_("Reason for unlocking"),
        help_text=_("Kept with the voided review in the screening's history."),
        max_length=reviews.REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Give the reason for unlocking.")},
    )


class ThresholdsForm(PanelForm):
    """One field per named threshold of INSTRUMENT.md section 5, plus the reason.

    ``based_on_version`` is the version the form showed: a version saved by
    someone else meanwhile is never overwritten unseen.
    """

    based_on_version = page_state_field(min_value=0)

    def __init__(self, *args, current=None, version=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["based_on_version"].initial = version
        current = current or thresholds.DEFAULTS
        for name, (default, unit, _used) in thresholds.SPEC.items():
            common = {
                "label": name,
                "help_text": _(
                    "%(unit)s · default %(default)s · from %(low)s to %(high)s · %(meaning)s"
                )
                % {
                    "meaning": thresholds.DESCRIPTIONS[name],
                    "unit": unit,
                    "default": default,
                    "low": thresholds.BOUNDS[name][0],
                    "high": thresholds.BOUNDS[name][1],
                },
                "initial": current[name],
                "min_value": 0,
            }
            if unit in thresholds.WHOLE_UNITS:
                self.fields[name] = forms.IntegerField(
                    **common,
                    max_value=10**6,
                    error_messages={
                        "invalid": _("Enter a whole number of %(unit)s.") % {"unit": unit}
                    },
                )
            else:
                self.fields[name] = forms.DecimalField(
                    **common,
                    max_digits=8,
                    decimal_places=2,
                    widget=forms.NumberInput(attrs={"step": "any"}),
                )
        self.fields["note"] = PanelTextField(
            label=_("Reason for the change"),
            max_length=reviews.REASON_MAX_LENGTH,
            widget=forms.Textarea(attrs={"rows": 2}),
            error_messages={"required": _("Give the reason for the change.")},
        )

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned[name] for name in thresholds.SPEC if cleaned.get(name) is not None}
        if len(values) == len(thresholds.SPEC):
            for name, message in thresholds.consistency_errors(values).items():
                self.add_error(name, message)
        return cleaned

    def threshold_values(self):
        """Return the submitted values as numbers."""
        return {name: thresholds.to_number(self.cleaned_data[name]) for name in thresholds.SPEC}

    def rebased(self, *, version, values, base_values):
        """Return this form moved onto ``version``: its values, with this form's own changes.

        A threshold this admin changed keeps the typed value; any other shows
        ``version``'s value. Each threshold both changed, differently, is marked.
        """
        typed = self.threshold_values()
        data = self.data.copy()
        data["based_on_version"] = str(version)
        conflicts, taken = {}, {}
        for name in thresholds.SPEC:
            mine = typed[name] != thresholds.to_number(base_values[name])
            theirs = thresholds.to_number(values[name]) != thresholds.to_number(base_values[name])
            if mine and theirs and typed[name] != thresholds.to_number(values[name]):
                conflicts[name] = values[name]
            elif theirs and not mine:
                data[name] = str(values[name])
                taken[name] = (base_values[name], values[name])
        form = type(self)(data, current=values, version=version)
        form.is_valid()
        for name, value in conflicts.items():
            form.add_error(
                name,
                _(
                    "Version %(version)s set this to %(value)s after you opened the form; "
                    "the value shown is yours."
                )
                % {"version": version, "value": value},
            )
        form.taken_from_newer = taken
        return form


DUPLICATE_OPTION = _(
    "There is already an option “%(label)s”: labels that differ only in capitals or "
    "spaces read as the same option. Use that one, or choose another label."
)
DUPLICATE_WITHDRAWN_OPTION = _(
    "There is already a withdrawn option “%(label)s”: labels that differ only in "
    "capitals or spaces read as the same option. Make that one active again, or choose "
    "another label."
)


def label_key(label):
    """Return ``label`` as a reader tells options apart: case and spacing ignored."""
    return " ".join(label.split()).casefold()


class DeterminationForm(forms.ModelForm):
    """A determination option; its label must read differently from every other option's."""

    class Meta:
        model = Determination
        fields = ("label", "position", "active")

    def clean_label(self):
        """Return the label with its spaces tidied; refuse one that reads as another option's."""
        label = " ".join(self.cleaned_data["label"].split())
        others = Determination.objects.exclude(pk=self.instance.pk).only("label", "active")
        for other in others:
            if label_key(other.label) == label_key(label):
                message = DUPLICATE_OPTION if other.active else DUPLICATE_WITHDRAWN_OPTION
                raise forms.ValidationError(message % {"label": other.label}, code="duplicate")
        return label


ROLE_CHOICES = [("", _("No role (cannot sign in to anything)")), *Role.choices]


def role_field():
    """Return the role select that maps to the role groups and admin-site access."""
    return forms.ChoiceField(
        label=_("Role"),
        choices=ROLE_CHOICES,
        required=False,
        help_text=_(
            "Intake staff screen patients; clinicians review; clinic admins also "
            "manage users, thresholds and exports."
        ),
    )


class RoleFieldMixin:
    """Apply the chosen role: its group, and admin-site access for clinical roles."""

    def apply_role(self, user):
        """Set ``user``'s role groups and admin access from the chosen role (user is saved)."""
        role = self.cleaned_data.get("role") or ""
        user.groups.remove(*Group.objects.filter(name__in=Role.values))
        if role:
            user.groups.add(Group.objects.get(name=role))
        is_staff = role in ADMIN_ROLES
        if user.is_staff != is_staff and not user.is_superuser:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff"])
        return role


class PasswordStatusWidget(ReadOnlyPasswordHashWidget):
    """Say whether an account has a password, with the link to set one; never the hash.

    Django's widget shows the hasher, its iterations and the first characters of
    the salt and hash: nothing a clinic admin can use.
    """

    template_name = "admin/auth/user/password_status.html"

    def __init__(self, *args, password_url="", **kwargs):
        super().__init__(*args, **kwargs)
        self.password_url = password_url

    def get_context(self, name, value, attrs):
        context = forms.Widget.get_context(self, name, value, attrs)
        context["password_set"] = bool(value) and not value.startswith(UNUSABLE_PASSWORD_PREFIX)
        context["password_url"] = self.password_url
        return context

    def _render(self, template_name, context, renderer=None):
        # Project templates are not on the default form renderer's path.
        return mark_safe(render_to_string(template_name, context))


class UserRoleChangeForm(RoleFieldMixin, UserChangeForm):
    role = role_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            role = user_role(self.instance)
            self.fields["role"].initial = role.value if role else ""
        if "password" in self.fields and self.instance.pk:
            url = reverse("admin:auth_user_password_change", args=[self.instance.pk])
            self.fields["password"].widget = PasswordStatusWidget(password_url=url)
            self.fields["password"].help_text = ""

    def clean(self):
        """Refuse deactivating or changing the role of the last active clinic admin."""
        cleaned = super().clean()
        user = self.instance  # still as stored: the form's values are set on it after clean()
        if user.pk is None or "role" not in cleaned:
            return cleaned
        active = cleaned.get("is_active") if "is_active" in self.fields else user.is_active
        if active and cleaned["role"] == Role.CLINIC_ADMIN:
            return cleaned
        if accounts.leaves_no_clinic_admin([user.pk]):
            message = accounts.LAST_CLINIC_ADMIN % {"username": user.get_username()}
            self.add_error("role" if active else "is_active", message)
        return cleaned


class UserRoleCreationForm(RoleFieldMixin, AdminUserCreationForm):
    role = role_field()


class AccountPasswordForm(ErrorSummaryMixin, AdminPasswordChangeForm):
    """Django's form setting another account's password, its errors summarised."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # As its page lays them out (Django adds "usable_password" last).
        self.order_fields(["usable_password", "password1", "password2"])


class OwnPasswordChangeForm(ErrorSummaryMixin, accounts.CountedOldPasswordMixin, OwnPasswordForm):
    """Django's form changing the signed-in user's own password, its errors summarised.

    The current password is checked as a sign-in attempt, as on the app's page.
    """
