from django.urls import path

from intake import downloads, views
from intake.wizard import ScreeningWizard

app_name = "intake"

urlpatterns = [
    path("", views.home, name="home"),
    path("screenings/new/", views.new_screening, name="new_screening"),
    path("screenings/<int:pk>/", views.screening, name="screening"),
    path("screenings/<int:pk>/summary.pdf", downloads.screening_pdf, name="screening_pdf"),
    path(
        "screenings/<int:pk>/questionnaire-response.json",
        downloads.screening_fhir,
        name="screening_fhir",
    ),
    path("instrument/questionnaire.json", downloads.questionnaire, name="questionnaire"),
    path("drafts/<int:draft_id>/", ScreeningWizard.as_view(), name="draft"),
    path("drafts/<int:draft_id>/<str:step>/", ScreeningWizard.as_view(), name="wizard_step"),
]
