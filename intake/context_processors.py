from django.conf import settings


def clinic(request):
    """Expose the clinic's display settings to every template."""
    return {"clinic_name": settings.CLINIC_NAME}
