from django.shortcuts import render


def home(request):
    """Show the staff home page."""
    return render(request, "intake/home.html")
