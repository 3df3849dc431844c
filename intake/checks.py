"""System checks for what a clinic must configure before going live."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_suicide_safety_protocol(app_configs, **kwargs):
    """Warn when the clinic's suicide-safety protocol text is not configured."""
    if settings.SUICIDE_SAFETY_PROTOCOL:
        return []
    return [
        Warning(
            "CLINIC_SUICIDE_SAFETY_PROTOCOL is not set: the urgent suicide-risk banner and the "
            "PDF can only say the clinic's protocol is not entered.",
            hint="Set it to the text of the clinic's suicide-safety protocol (what staff do "
            "at once, whom they call).",
            id="intake.W001",
        )
    ]


@register(deploy=True)
def check_pdf_font_subsetting(app_configs, **kwargs):
    """Warn when WeasyPrint has to subset the PDF's fonts with its slow fontTools fallback."""
    # Imported here: WeasyPrint is slow to import and most commands never render a PDF.
    from intake import pdf

    if pdf.harfbuzz_subset_available():
        return []
    return [
        Warning(
            "HarfBuzz-Subset (libharfbuzz-subset 4.1 or newer) is not installed: WeasyPrint "
            "subsets the PDF summary's fonts with fontTools instead, which made a summary 1.6 "
            "times and a one-line page 10 times slower to render in the benchmark, and which "
            "future WeasyPrint versions drop.",
            hint="Install it with the system's package manager (Debian: apt-get install "
            "libharfbuzz-subset0).",
            id="intake.W002",
        )
    ]
