"""The `affelios-summary` command: a run's summary from its results file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from affelios_import.errors import AffeliosImportError
from affelios_import.output.results import summarise
from affelios_import.version import __version__


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("results_path", metavar="RESULTS", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead.")
@click.version_option(__version__, prog_name="affelios-summary")
def main(results_path: Path, as_json: bool) -> None:
    """Summarise a results file of affelios-import, without running anything again.

    Prints what the run printed at its end (but the time it took): counts per status
    and the commonest errors with their first rows. Exits as the run did: 0 all good,
    1 some rows invalid or failed, 3 some rows not sent.

    \b
    Example:
      affelios-summary customers.results.csv
      affelios-summary customers.results.csv --json | jq .counts
    """
    try:
        summary = summarise(results_path)
    except AffeliosImportError as exc:
        click.echo(f"affelios-summary: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(json.dumps(summary.to_dict(), indent=2) if as_json else summary.to_text())
    sys.exit(summary.exit_code)
