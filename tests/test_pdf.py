"""The PDF summary: content, layout facts, PDF/A-3b with the FHIR attachment, and the fetcher."""

import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import weasyprint
from django.template.loader import render_to_string
from django.utils import timezone
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pypdf import PdfReader

from intake import instrument, pdf, rules
from intake.models import Addendum, Flag, Review
from tests.factories import make_screening
from tests.pdf_factories import (
    REALISTIC_FLAGS,
    build_screening,
    many_flags,
    realistic_answers,
)

HOSTILE = {
    "last_name": '<img src="file:///etc/passwd">',
    "alg_other": '<link rel="attachment" href="file:///etc/passwd">',
    "mrn": "http://169.254.169.254/",
}
STYLESHEET_URL = pdf.STATIC_BASE_URL + pdf.STYLESHEET


def squash(text):
    """Return ``text`` with all whitespace collapsed to single spaces."""
    return re.sub(r"\s+", " ", text).strip()


def pdf_text(data):
    return squash(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def attached_response(data):
    attachments = PdfReader(io.BytesIO(data)).attachments
    assert list(attachments) == [pdf.ATTACHMENT_NAME]
    return json.loads(attachments[pdf.ATTACHMENT_NAME][0])


def response_link_ids(items):
    """Return the linkIds of answered questions (step groups and med sub-items excluded)."""
    found = set()
    for item in items:
        if item["linkId"].startswith("step-"):
            found |= response_link_ids(item.get("item", []))
        elif "." not in item["linkId"]:
            found.add(item["linkId"])
    return found


def render(screening, **kwargs):
    fetcher = pdf.StaticOnlyFetcher()
    data = pdf.render_summary(screening, url_fetcher=fetcher, **kwargs)
    return data, fetcher


@pytest.fixture
def realistic(staff_user):
    return build_screening(staff_user, realistic_answers(), REALISTIC_FLAGS)


def test_summary_holds_every_answered_label_and_flag_id(realistic):
    data, fetcher = render(realistic)
    text = pdf_text(data)
    answers = instrument.decode_answers(realistic.answers)
    for code in answers:
        assert squash(instrument.question(code).label) in text, code
    for rule_id, *_rest in REALISTIC_FLAGS:
        assert rule_id in text
    assert "Flags are prompts for clinician review, not a treatment decision." in text
    assert fetcher.requested == [STYLESHEET_URL]
    assert fetcher.refused == []


def test_header_shows_patient_and_submission_facts(realistic, settings):
    data, _fetcher = render(realistic)
    text = pdf_text(data)
    local = timezone.localtime(realistic.submitted_at)
    for expected in (
        settings.CLINIC_NAME,
        "Alex Rivera",
        "1959-06-02",
        "MRN-1001",
        f"#{realistic.pk}",
        local.strftime("%Y-%m-%d %H:%M"),
        "staff",
    ):
        assert expected in text
    assert re.search(r"\(age \d+\)", text)


def test_medication_table_lists_detected_classes(realistic):
    text = pdf_text(render(realistic)[0])
    assert "Lorazepam" in text
    assert "Benzodiazepines" in text
    assert "not recognized" in text


def test_every_page_has_footer_with_page_numbers_versions_and_hash(realistic):
    data, _fetcher = render(realistic)
    reader = PdfReader(io.BytesIO(data))
    total = len(reader.pages)
    assert total >= 2
    for number, page in enumerate(reader.pages, start=1):
        text = squash(page.extract_text())
        assert f"Page {number} of {total}" in text
        assert f"Screening #{realistic.pk}" in text
        assert "Instrument 1.0" in text
        assert "Thresholds v3" in text
        assert realistic.snapshot_sha256 in text


def test_every_page_footer_names_the_summary_version_reason_and_time(realistic):
    generated = timezone.now()
    stamp = pdf.Version(number=3, reason_label="Review signed", generated_at=generated)
    reader = PdfReader(io.BytesIO(render(realistic, version=stamp)[0]))
    local = timezone.localtime(generated).strftime("%Y-%m-%d %H:%M")
    expected = f"Summary version 3 of screening {realistic.pk} · Review signed · generated {local}"
    assert len(reader.pages) >= 2
    for page in reader.pages:
        text = squash(page.extract_text())
        assert expected in text
        assert realistic.snapshot_sha256 in text


def test_urgent_flag_comes_first_then_review_caution_info(realistic):
    text = pdf_text(render(realistic)[0])
    table = text[text.index("SEVERITY RULE FINDING") :]
    positions = [table.index(rule_id) for rule_id, *_rest in REALISTIC_FLAGS]
    assert positions == sorted(positions)
    assert "URGENT · SUI-01" in text


@pytest.mark.parametrize("configured", ["Call the on-call psychiatrist at 555-0100.", ""])
def test_the_urgent_flag_prints_the_clinic_protocol_or_says_it_is_not_entered(
    settings, realistic, configured
):
    settings.SUICIDE_SAFETY_PROTOCOL = configured
    text = pdf_text(render(realistic)[0])
    printed = configured or "Not entered in this app. Follow the clinic's own suicide-safety"
    assert "Clinic protocol: " + printed in text
    assert ("Not entered in this app" in text) is not bool(configured)


def test_summary_is_tagged_for_screen_readers(realistic):
    reader = PdfReader(io.BytesIO(render(realistic)[0]))
    catalog = reader.trailer["/Root"]
    assert catalog["/MarkInfo"]["/Marked"] == True  # noqa: E712 (a PDF boolean object)
    assert catalog["/Lang"]
    kinds = set()

    def walk(element):
        element = element.get_object()
        if isinstance(element, dict):
            if "/S" in element:
                kinds.add(element["/S"])
            children = element.get("/K", [])
            for child in children if isinstance(children, list) else [children]:
                walk(child)

    walk(catalog["/StructTreeRoot"])
    assert {"/H1", "/H2", "/Table", "/TR", "/TH", "/TD"} <= kinds


def test_summary_is_pdf_a_3b(realistic):
    reader = PdfReader(io.BytesIO(render(realistic)[0]))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert re.search(r"pdfaid:part[^0-9]{0,3}3", xmp)
    assert re.search(r"pdfaid:conformance[^A-Z]{0,3}B", xmp)
    assert "/OutputIntents" in reader.trailer["/Root"]


def test_attachment_is_a_valid_questionnaire_response_of_the_answered_codes(realistic):
    response = attached_response(render(realistic)[0])
    QuestionnaireResponse.model_validate(response)
    assert response["status"] == "completed"
    assert response["questionnaire"] == f"{instrument.QUESTIONNAIRE_URL}|1.0"
    assert response_link_ids(response["item"]) == set(realistic.answers)


def test_screening_without_flags_says_so(staff_user):
    screening = build_screening(staff_user, flags=())
    text = pdf_text(render(screening)[0])
    assert (
        "No flags raised by the screening rules. A clinician still reviews every screening." in text
    )


def test_forty_flags_all_printed(staff_user):
    flags = many_flags(40)
    screening = build_screening(staff_user, flags=flags)
    data, _fetcher = render(screening)
    text = pdf_text(data)
    for rule_id, *_rest in flags:
        assert rule_id in text
    assert len(PdfReader(io.BytesIO(data)).pages) >= 3


def test_long_free_text_wraps_across_pages_in_full(staff_user):
    words = [f"w{index:04d}" for index in range(1000)]
    long_text = " ".join(words)
    assert len(long_text) >= 4999
    screening = build_screening(staff_user, realistic_answers(alg_other=long_text))
    data = render(screening)[0]
    reader = PdfReader(io.BytesIO(data))
    pages_with_words = [
        number for number, page in enumerate(reader.pages) if "w0" in page.extract_text()
    ]
    # Page breaks put running heads and footers between words, so compare the words.
    assert re.findall(r"w\d{4}", pdf_text(data)) == words
    assert len(pages_with_words) >= 2


def test_unbroken_long_answer_is_wrapped_not_cut(staff_user):
    blob = "x" * 3000
    screening = build_screening(staff_user, realistic_answers(alg_other=blob))
    text = pdf_text(render(screening)[0]).replace(" ", "")
    assert sum(len(run) for run in re.findall(r"x{20,}", text)) == 3000


def test_hostile_answers_print_as_inert_text_and_nothing_is_fetched(staff_user):
    screening = build_screening(staff_user, realistic_answers(**HOSTILE), REALISTIC_FLAGS)
    data, fetcher = render(screening)
    text = pdf_text(data)
    for payload in HOSTILE.values():
        assert payload in text
    assert fetcher.requested == [STYLESHEET_URL]
    assert fetcher.served == [STYLESHEET_URL]
    assert fetcher.refused == []
    assert b"root:x:0:0" not in data
    response = attached_response(data)
    QuestionnaireResponse.model_validate(response)
    assert response["subject"]["display"] == f"Alex {HOSTILE['last_name']}"


class _Redirector(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):  # noqa: N802 - http.server API
        type(self).hits += 1
        self.send_response(302)
        self.send_header("Location", "file:///etc/passwd")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def redirect_server():
    _Redirector.hits = 0
    server = HTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetcher_refuses_file_http_and_redirect_urls(redirect_server, caplog):
    html = (
        '<html><head><link rel="stylesheet" href="intake/pdf/summary.css">'
        '<link rel="attachment" href="file:///etc/passwd">'
        f'<link rel="stylesheet" href="{redirect_server}style.css"></head><body>'
        '<img src="file:///etc/passwd"><img src="http://169.254.169.254/latest/meta-data/">'
        f'<img src="{redirect_server}img.png">'
        '<img src="../../../../etc/passwd"><img src="/etc/passwd">'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        "<p>text</p></body></html>"
    )
    fetcher = pdf.StaticOnlyFetcher()
    data = pdf.render_html(html, url_fetcher=fetcher, pdf_variant=None)
    assert data.startswith(b"%PDF")
    assert _Redirector.hits == 0
    assert fetcher.served[0] == STYLESHEET_URL
    assert all(url == STYLESHEET_URL or url.startswith("data:") for url in fetcher.served)
    assert "file:///etc/passwd" in fetcher.refused
    assert "http://169.254.169.254/latest/meta-data/" in fetcher.refused
    assert f"{redirect_server}img.png" in fetcher.refused
    assert f"{redirect_server}style.css" in fetcher.refused
    assert b"root:x:0:0" not in data
    assert PdfReader(io.BytesIO(data)).attachments == {}


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        pdf.STATIC_BASE_URL + "../etc/passwd",
        pdf.STATIC_BASE_URL + "intake/../../etc/passwd",
        pdf.STATIC_BASE_URL + "%2e%2e/%2e%2e/etc/passwd",
        pdf.STATIC_BASE_URL + "/etc/passwd",
        pdf.STATIC_BASE_URL + "intake\\..\\..\\etc\\passwd",
        pdf.STATIC_BASE_URL + "does/not/exist.css",
        pdf.STATIC_BASE_URL,
        "http://169.254.169.254/",
        "https://example.org/style.css",
        "ftp://example.org/x",
    ],
)
def test_static_path_rejects_everything_but_static_files(url):
    assert pdf.static_path(url) is None


def test_static_path_finds_our_stylesheet():
    assert pdf.static_path(STYLESHEET_URL).endswith("intake/pdf/summary.css")


def test_page_size_follows_the_setting(staff_user, settings):
    screening = build_screening(staff_user)
    letter = PdfReader(io.BytesIO(render(screening)[0])).pages[0].mediabox
    settings.PDF_PAGE_SIZE = "A4"
    a4 = PdfReader(io.BytesIO(render(screening)[0])).pages[0].mediabox
    assert round(float(letter.width)) == 612
    assert round(float(a4.width)) == 595


def test_unsigned_screening_has_blank_signature_lines(realistic):
    text = pdf_text(render(realistic)[0])
    assert "Not yet signed in the review panel" in text
    assert "Signature" in text
    assert "Clinician's determination" in text


def test_signed_void_review_and_addendum_are_printed(realistic, clinician):
    now = timezone.now()
    Review.objects.create(
        screening=realistic,
        clinician=clinician,
        determination="Proceed to consult",
        note="First note.",
        acknowledged_rule_ids=["SUI-01"],
        signed_at=now,
        voided_at=now,
        voided_by=clinician,
        void_reason="Signed on the wrong chart.",
    )
    Review.objects.create(
        screening=realistic,
        clinician=clinician,
        determination="Refer to psychiatry first",
        note="Discussed safety plan.",
        acknowledged_rule_ids=["SUI-01", "BP-02"],
        signed_at=now,
    )
    Addendum.objects.create(screening=realistic, author=clinician, text="Repeat BP 150/90.")
    data, _fetcher = render(realistic)
    text = pdf_text(data)
    assert "VOID" in text and "Signed on the wrong chart." in text
    assert "Refer to psychiatry first" in text
    # Each printed review names the determination as the clinician's, as the panel does.
    assert text.count("Clinician's determination") == 2
    assert "Discussed safety plan." in text
    assert "SUI-01, BP-02" in text
    assert "Repeat BP 150/90." in text
    assert "Not yet signed in the review panel" not in text
    assert attached_response(data)["status"] == "amended"


def test_summary_of_a_screening_submitted_through_the_service(staff_user):
    screening = make_screening(staff_user, realistic_answers())
    flag_ids = list(screening.flags.values_list("rule_id", flat=True))
    assert "SUI-01" in flag_ids
    data, fetcher = render(screening)
    text = pdf_text(data)
    for rule_id in flag_ids:
        assert rule_id in text
    for code in screening.answers:
        assert squash(instrument.question(code).label) in text
    response = attached_response(data)
    QuestionnaireResponse.model_validate(response)
    assert response_link_ids(response["item"]) == set(screening.answers)
    assert fetcher.refused == []


# ---------------------------------------------------------------------------
# Flag evidence and acknowledgement order


def test_flag_without_a_finding_placeholder_prints_its_evidence(staff_user):
    flags = (
        ("BP-03", "review", False, rules.MESSAGES["BP-03"], ["K1"]),
        ("CV-01", "review", False, rules.MESSAGES["CV-01"], ["E1"]),
    )
    evidence = [{"code": "cv_htn", "value": "unsure"}]
    screening = build_screening(staff_user, realistic_answers(), flags, evidence=evidence)
    text = pdf_text(render(screening)[0])
    label = squash(instrument.question("cv_htn").label)
    assert text.count(f"Evidence: {label} Unsure") == 2


def test_evidence_the_message_already_states_is_not_repeated():
    tz = pdf.clinic_tz()
    found = Flag(
        rule_id="URO-01",
        message="Urinary symptoms in the past month: Passing urine more often than usual.",
        evidence=[{"code": "uro_symptoms", "value": ["frequency"]}],
    )
    medication = Flag(
        rule_id="TST-01",
        message="Benzodiazepine listed: Lorazepam.",
        evidence=[{"medication": "Lorazepam", "classes": ["benzodiazepine"]}],
    )
    plain = Flag(
        rule_id="PSY-01",
        message=rules.MESSAGES["PSY-01"],
        evidence=[{"code": "psy_psychosis_now", "value": "yes"}],
    )
    assert pdf.flag_evidence(found, tz=tz) == []
    assert pdf.flag_evidence(medication, tz=tz) == []
    assert pdf.flag_evidence(plain, tz=tz) == [
        f"{instrument.question('psy_psychosis_now').label} Yes"
    ]


def test_acknowledged_flags_are_listed_in_flag_table_order(realistic, clinician):
    Review.objects.create(
        screening=realistic,
        clinician=clinician,
        determination="Proceed to consult",
        note="Reviewed.",
        acknowledged_rule_ids=["AGE-02", "BP-02", "SUI-01", "OLD-01"],
        signed_at=timezone.now(),
    )
    text = pdf_text(render(realistic)[0])
    assert "SUI-01, BP-02, AGE-02, OLD-01" in text


# ---------------------------------------------------------------------------
# Page breaks


def laid_out(screening, **kwargs):
    """Return the summary's HTML root element and its WeasyPrint document laid out in pages."""
    html = render_to_string(pdf.TEMPLATE, pdf.summary_context(screening, **kwargs))
    source = weasyprint.HTML(
        string=html, base_url=pdf.STATIC_BASE_URL, url_fetcher=pdf.StaticOnlyFetcher()
    )
    return source.etree_element, source.render(font_config=pdf.font_config())


def pages_of(document, tag):
    """Return ``{element: [page numbers]}`` of every box of ``tag`` elements."""
    found = {}
    for number, page in enumerate(document.pages, start=1):
        for box in page._page_box.descendants():
            if getattr(box, "element_tag", None) == tag and box.element is not None:
                pages = found.setdefault(box.element, [])
                if number not in pages:
                    pages.append(number)
    return found


def next_sibling(root, element):
    """Return the element after ``element`` in its parent, or None."""
    for parent in root.iter():
        children = list(parent)
        if element in children:
            index = children.index(element)
            return children[index + 1] if index + 1 < len(children) else None
    return None


MULTI_LINE_MEDICINES = ("promethazine with codeine", "Tylenol PM", "Sudafed", "Adderall XR")


@pytest.fixture(params=[0, 16])
def crowded(request, staff_user):
    """Return a screening whose rows of several lines meet page ends (checked without the fix)."""
    medications = [
        {"name": MULTI_LINE_MEDICINES[index % 4], "dose": "5 mL", "frequency": "PRN"}
        for index in range(request.param)
    ]
    answers = realistic_answers(medications=medications)
    return build_screening(staff_user, answers, many_flags(12))


def test_no_table_row_is_split_across_pages(crowded, clinician):
    Review.objects.create(
        screening=crowded,
        clinician=clinician,
        determination="Proceed to consult",
        note="Reviewed with the patient.\nPlan agreed.",
        acknowledged_rule_ids=["TST-00"],
        signed_at=timezone.now(),
    )
    root, document = laid_out(crowded)
    # Header rows repeat on every page of their table by design.
    headers = {row for head in root.iter("thead") for row in head.iter("tr")}
    rows = {row: pages for row, pages in pages_of(document, "tr").items() if row not in headers}
    assert len(document.pages) >= 4
    assert len(rows) > 100
    split = [
        ("".join(element.itertext())[:60], pages)
        for element, pages in rows.items()
        if len(pages) > 1 and "med-row" not in element.get("class", "")
    ]
    assert split == []


def test_no_review_record_is_split_across_pages(crowded, clinician):
    for index in range(8):
        Review.objects.create(
            screening=crowded,
            clinician=clinician,
            determination="Proceed to consult",
            note=f"Review {index}: reviewed with the patient.\nPlan agreed.",
            acknowledged_rule_ids=["TST-00"],
            signed_at=timezone.now(),
            voided_at=timezone.now() if index < 7 else None,
            voided_by=clinician if index < 7 else None,
            void_reason="Signed on the wrong screening." if index < 7 else "",
        )
    root, document = laid_out(crowded)
    records = {
        element: pages
        for element, pages in pages_of(document, "div").items()
        if "review-record" in element.get("class", "")
    }
    assert len(records) == 8
    split = [pages for pages in records.values() if len(pages) > 1]
    assert split == []


def test_a_heading_is_never_the_last_thing_on_its_page(crowded):
    root, document = laid_out(crowded)
    checked = 0
    for tag in ("h2", "h3"):
        for heading, pages in pages_of(document, tag).items():
            following = next_sibling(root, heading)
            if following is None:
                continue
            after = pages_of(document, following.tag).get(following, [])
            assert pages[-1] in after, "".join(heading.itertext())
            checked += 1
    assert checked >= 3


def test_answer_and_review_note_taller_than_a_page_print_in_full(staff_user, clinician):
    words = [f"w{index:04d}" for index in range(1000)]
    screening = build_screening(staff_user, realistic_answers(alg_other=" ".join(words)))
    lines = [f"n{index:03d} of the review note." for index in range(100)]
    note = "\n".join(lines)
    assert len(note) >= 2400
    Review.objects.create(
        screening=screening,
        clinician=clinician,
        determination="Proceed to consult",
        note=note,
        acknowledged_rule_ids=[],
        signed_at=timezone.now(),
    )
    data = render(screening)[0]
    text = pdf_text(data)
    assert re.findall(r"w\d{4}", text) == words
    assert re.findall(r"n\d{3} of the review note\.", text) == lines
    reader = PdfReader(io.BytesIO(data))
    note_pages = [n for n, page in enumerate(reader.pages) if "n050 of" in page.extract_text()]
    assert note_pages
