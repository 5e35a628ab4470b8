"""`policyengine card validate|import`: check cards, convert other card formats.

``card validate FILE...`` checks each card against
schemas/model-card.schema.json and prints every problem as ``FILE: $.path:
message``; exit 0 when all are valid, 2 otherwise. ``card import FILE|DIR
[--format auto|huggingface|mct|sagemaker|mlflow]`` (``--from`` is the same
option) converts a Hugging Face, Model Card Toolkit, SageMaker or MLflow
card, or every file of a directory, says which format it read, prints what is
missing, and writes the card (JSON, or YAML when ``--out`` ends in
.yaml/.yml) and, with ``--report``, the import report; exit 0 when every
result is a valid card, 1 when one is written but still lacks required
fields, 2 when an input is malformed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO


def register(subparsers: Any) -> None:
    """Add the ``card`` command with its ``validate`` and ``import`` subcommands."""
    parser = subparsers.add_parser(
        "card",
        help="validate model cards or import other card formats",
        description="Validate model cards or import other card formats.",
    )
    sub = parser.add_subparsers(dest="card_command", metavar="SUBCOMMAND", required=True)
    validate = sub.add_parser("validate", help="check cards against the model-card schema")
    validate.add_argument("files", nargs="+", metavar="FILE", help="card files (JSON or YAML)")
    validate.set_defaults(func=_validate)
    imp = sub.add_parser(
        "import",
        help="convert third-party cards into policyengine cards, with an import report",
        description="Convert a Hugging Face, Model Card Toolkit (JSON or protobuf text), "
        "SageMaker or MLflow card, or every card in a directory. The format is detected "
        "from the content unless --format names it. A card still lacking identity fields "
        "is written anyway (exit 1) with a report of what is missing.",
    )
    imp.add_argument("path", metavar="FILE|DIR", help="source card, or a directory of them")
    imp.add_argument("--format", "--from", dest="fmt", default="auto",
                     choices=("auto", *_formats()),
                     help="source format (default auto: detected from the content)")
    imp.add_argument("--name", help="model name (overrides the source)")
    imp.add_argument("--version", help="model version (overrides the source)")
    imp.add_argument("--digest", help="artifact digest sha256:<64 hex>")
    imp.add_argument("--risk-tier", choices=("high", "medium", "low", "minimal"))
    imp.add_argument("--author", help="who built the model version (separation of duties)")
    imp.add_argument("--out", metavar="FILE|DIR",
                     help="write the card here (default: stdout, JSON); a directory for DIR")
    imp.add_argument("--report", metavar="FILE",
                     help="write the import report here (JSON); for DIR, reports go beside "
                     "each card as NAME.import-report.json")
    imp.set_defaults(func=_import)


def _formats() -> tuple[str, ...]:
    return ("huggingface", "mct", "sagemaker", "mlflow")


def _validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.cards.validate import card_issues, load_document
    from policyengine.errors import InputError

    status = 0
    for name in args.files:
        try:
            issues = card_issues(load_document(name))
        except InputError as exc:
            err.write(f"{exc}\n")
            status = 2
            continue
        for issue in issues:
            err.write(f"{name}: {issue.path}: {issue.message}\n")
        if issues:
            status = 2
        else:
            out.write(f"{name}: ok\n")
    return status


def _dump(data: dict[str, Any], target: str | Path | None) -> str:
    """JSON (or YAML for a .yaml/.yml target), key order as built: same input, same bytes."""
    if target and str(target).endswith((".yaml", ".yml")):
        import yaml

        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _overrides(args: argparse.Namespace) -> dict[str, str | None]:
    return {"name": args.name, "version": args.version, "digest": args.digest,
            "risk_tier": args.risk_tier, "author": args.author}


def _summary(result: Any, err: TextIO, label: str) -> int:
    """Report one imported card on stderr; 0 when schema-valid, 1 when partial."""
    report = result.report
    err.write(f"{label}: read as {result.source_format}"
              f"{' (detected)' if label else ''}\n")
    for warning in result.warnings:
        err.write(f"warning: {warning}\n")
    if result.missing:
        err.write(f"missing: {', '.join(result.missing)}\n")
    for issue in report["schema_issues"]:
        err.write(f"not yet valid: {issue}\n")
    if report["schema_issues"]:
        err.write("partial card written: supply the missing values (--name, --version, "
                  "--digest, --risk-tier) or edit the card\n")
    return 0 if report["complete"] else 1


def _import_file(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.cards.importers import import_card

    result = import_card(args.fmt, args.path, **_overrides(args))
    status = _summary(result, err, args.path if args.fmt == "auto" else "")
    text = _dump(result.card, args.out)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        out.write(text)
    if args.report:
        Path(args.report).write_text(_dump(result.report, None), encoding="utf-8")
    return status


def _import_directory(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.cards.importers import import_directory
    from policyengine.errors import InputError

    if not args.out:
        raise InputError(f"{args.path}: importing a directory needs --out DIR for the cards")
    root, target = Path(args.path), Path(args.out)
    status = 0
    for path, result in import_directory(root, args.fmt, **_overrides(args)):
        if isinstance(result, InputError):
            err.write(f"refused: {result}\n")
            status = 2
            continue
        stem = target / path.relative_to(root)
        stem.parent.mkdir(parents=True, exist_ok=True)
        card_file = stem.with_name(stem.name + ".card.json")
        card_file.write_text(_dump(result.card, None), encoding="utf-8")
        stem.with_name(stem.name + ".import-report.json").write_text(
            _dump(result.report, None), encoding="utf-8")
        status = max(status, _summary(result, err, str(path)))
        out.write(f"{card_file}\n")
    return status


def _import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if Path(args.path).is_dir():
        return _import_directory(args, out, err)
    return _import_file(args, out, err)
