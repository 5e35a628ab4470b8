"""`policyengine whatif`: which versions in a stage would new policies decide differently?

``whatif --policies DIR [--stage production] [--params FILE] [--set p.k=v]
[--format table|json|html]`` tries the recorded input of every version in
the stage under the new policies (``policyengine.whatif``), with the
configured params for the stage and the given overrides on top. Exit 0 when
nothing would flip, 1 when something would, 2 bad input, 3 log unavailable.
The html format is one self-contained page (no external assets).
"""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from policyengine.cli import EXIT_DENY, EXIT_OK
from policyengine.cli._common import add_config_options, config_from_args, guarded

if TYPE_CHECKING:
    from policyengine.whatif import WhatIfReport

__all__ = ["register", "render_html", "render_table"]


def register(subparsers: Any) -> None:
    """Add the ``whatif`` command."""
    parser = subparsers.add_parser(
        "whatif",
        help="which versions in a stage would new policies flip",
        description="Evaluate the recorded input of every model version now in STAGE (its "
        "last allowing decision) under the policies in --policies, and list the versions "
        "that would flip allow -> deny or deny -> allow. Exit 0 no flips, 1 flips.",
    )
    parser.add_argument("--stage", default="production", help="stage (default production)")
    parser.add_argument("--params", metavar="FILE", help="param overrides {policy: {param: v}}")
    parser.add_argument("--set", dest="sets", metavar="POLICY.PARAM=VALUE", action="append",
                        default=[], help="one param override (repeatable; wins over --params)")
    parser.add_argument("--format", choices=("table", "json", "html"), default="table")
    add_config_options(parser)
    parser.set_defaults(func=guarded(_run), logs=False)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.cli.audit_replay import open_existing_log
    from policyengine.engine import compile_configured
    from policyengine.policy import load_overrides, merge_overrides
    from policyengine.whatif import whatif

    if not args.policies:
        raise _usage("--policies DIR is required: the new policy set to try")
    config = config_from_args(args)
    overrides = load_overrides(Path(args.params) if args.params else None, args.sets)
    with_overrides = _with_params(config, merge_overrides(config.params, overrides))
    compiled = compile_configured(with_overrides, args.stage).compiled
    log = open_existing_log(config)
    try:
        report = whatif(log, compiled, args.stage)
    finally:
        log.close()
    if args.format == "json":
        out.write(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    elif args.format == "html":
        out.write(render_html(report))
    else:
        out.write(render_table(report))
    return EXIT_DENY if report.flips() else EXIT_OK


def _usage(message: str) -> Exception:
    from policyengine.errors import InputError

    return InputError(message)


def _with_params(config: Any, params: dict[str, dict[str, Any]]) -> Any:
    """``config`` with file-wide params replaced (stage sections still apply on top)."""
    import dataclasses

    return dataclasses.replace(config, params=params)


def _status(row: Any) -> str:
    if row.proposed is None:
        return "not evaluated"
    return f"{row.recorded} -> {row.proposed}" if row.flipped else "unchanged"


def render_table(report: WhatIfReport) -> str:
    """A plain-text table for people, then a summary line."""
    lines = [f"what-if for stage {report.stage} under bundle {report.bundle_digest[:19]}"]
    header = ("model", "version", "decision", "result")
    rows = [(r.model, r.version, f"seq {r.decision_seq}", _status(r)) for r in report.rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for cells in (header, *rows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)))
    for r in report.rows:
        for rule in r.failing if r.flipped else ():
            lines.append(f"  {r.model} {r.version}: {rule}")
        if r.note:
            lines.append(f"  {r.model} {r.version}: not evaluated: {r.note}")
    s = report.summary()
    lines.append(f"{s['versions']} version(s) in {report.stage}: {s['allow_to_deny']} would "
                 f"flip allow -> deny, {s['deny_to_allow']} deny -> allow, "
                 f"{s['not_evaluated']} not evaluated")
    return "\n".join(lines) + "\n"


_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.flip{background:#fde2e2}.ok{background:#e6f4ea}.na{background:#eee}code{font-size:12px}"""


def render_html(report: WhatIfReport) -> str:
    """One self-contained page: inline style, no scripts, no external assets."""
    esc = html.escape
    rows = []
    for r in report.rows:
        css = "na" if r.proposed is None else "flip" if r.flipped else "ok"
        rules = "<br>".join(esc(x) for x in r.failing) if r.flipped else esc(r.note or "")
        rows.append(f"<tr class='{css}'><td>{esc(r.model)}</td><td>{esc(r.version)}</td>"
                    f"<td>{r.decision_seq}</td><td>{esc(_status(r))}</td><td>{rules}</td></tr>")
    s = report.summary()
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>What-if: {esc(report.stage)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>What-if for stage {esc(report.stage)}</h1>"
        f"<p>New policy bundle <code>{esc(report.bundle_digest)}</code>: "
        f"{s['versions']} version(s), {s['allow_to_deny']} allow &rarr; deny, "
        f"{s['deny_to_allow']} deny &rarr; allow, {s['not_evaluated']} not evaluated.</p>"
        "<table><tr><th>model</th><th>version</th><th>decision seq</th><th>result</th>"
        f"<th>blocking rules / note</th></tr>{''.join(rows)}</table></body></html>\n"
    )
