import json

from django.core.management.base import BaseCommand, CommandError

from intake import benchmarks


class Command(BaseCommand):
    help = "Run benchmark sections (default: all) and print their figures."

    def add_arguments(self, parser):
        parser.add_argument("sections", nargs="*", help="Sections to run (default: all).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--quick", action="store_true", help="Tiny sizes: check that the sections run."
        )

    def handle(self, *args, sections, json=False, quick=False, **options):
        unknown = sorted(set(sections) - set(benchmarks.SECTIONS))
        if unknown:
            raise CommandError(
                f"Unknown section(s): {', '.join(unknown)}. "
                f"Known: {', '.join(benchmarks.SECTIONS)}."
            )
        results = benchmarks.run(sections or None, quick=quick)
        if json:
            self.stdout.write(_dumps(results))
            return
        for key, value in results.items():
            self.stdout.write(f"{key}: {value}")


def _dumps(results):
    return json.dumps(results, sort_keys=True)
