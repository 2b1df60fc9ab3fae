"""`flowspec schema`: write the published JSON Schemas, or check that they match the models."""

from __future__ import annotations

from pathlib import Path

import click

from flowspec import schema as schemas
from flowspec.diagnostics import UserError

DEFAULT_DIR = Path("schemas")


@click.command("schema")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one schema per kind plus the bundle into DIR (created if missing).",
    metavar="DIR",
)
@click.option(
    "--check",
    is_flag=True,
    help="Compare the schemas in DIR (default: schemas/) with the models; exit 1 if they drift.",
)
def schema(out_dir: Path | None, check: bool) -> int:
    """Generate the JSON Schemas (draft 2020-12) editors use for completion and hover help.

    Without options, print the bundle schema (any kind of document) to stdout.
    """
    if check:
        target = out_dir or DEFAULT_DIR
        problems = schemas.drift(target)
        for line in problems:
            click.echo(line, err=True)
        if problems:
            click.echo(
                f"error: {len(problems)} schema file(s) out of date; run "
                f"`flowspec schema --out {target}` and commit the result",
                err=True,
            )
            return 1
        click.echo(f"ok: {len(schemas.generate())} schema files in {target} match the models")
        return 0
    if out_dir is not None:
        try:
            written = schemas.write(out_dir)
        except OSError as exc:
            raise UserError(f"cannot write schemas to {out_dir}: {exc.strerror or exc}") from None
        for path in written:
            click.echo(f"wrote {path}")
        return 0
    click.echo(schemas.render(schemas.bundle_schema()), nl=False)
    return 0
