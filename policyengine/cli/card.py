"""`policyengine card validate|import`: check cards, convert other card formats.

``card validate FILE...`` checks each card against
schemas/model-card.schema.json and prints every problem as ``FILE: $.path:
message``; exit 0 when all are valid, 2 otherwise. ``card import --from
FORMAT FILE`` converts a Hugging Face, Model Card Toolkit, SageMaker or
MLflow card, prints what is missing, and writes the card (JSON, or YAML when
``--out`` ends in .yaml/.yml); exit 0 when the result is a valid card, 1 when
it is written but still lacks required fields, 2 when the input is malformed.
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
    imp = sub.add_parser("import", help="convert a third-party card into a policyengine card")
    imp.add_argument("--from", dest="fmt", required=True, choices=_formats(), help="source format")
    imp.add_argument("file", metavar="FILE", help="source card file")
    imp.add_argument("--name", help="model name (overrides the source)")
    imp.add_argument("--version", help="model version (overrides the source)")
    imp.add_argument("--digest", help="artifact digest sha256:<64 hex>")
    imp.add_argument("--risk-tier", choices=("high", "medium", "low", "minimal"))
    imp.add_argument("--author", help="who built the model version (separation of duties)")
    imp.add_argument("--out", metavar="FILE", help="write the card here (default: stdout, JSON)")
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


def _dump(card: dict[str, Any], target: str | None) -> str:
    if target and target.endswith((".yaml", ".yml")):
        import yaml

        return str(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
    return json.dumps(card, indent=2, ensure_ascii=False) + "\n"


def _import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.cards.importers import import_card
    from policyengine.cards.validate import card_issues

    result = import_card(
        args.fmt,
        args.file,
        name=args.name,
        version=args.version,
        digest=args.digest,
        risk_tier=args.risk_tier,
        author=args.author,
    )
    for warning in result.warnings:
        err.write(f"warning: {warning}\n")
    if result.missing:
        err.write(f"missing: {', '.join(result.missing)}\n")
    text = _dump(result.card, args.out)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        out.write(text)
    issues = card_issues(result.card)
    for issue in issues:
        err.write(f"not yet valid: {issue.path}: {issue.message}\n")
    if issues:
        err.write(
            "supply the missing values (--name, --version, --digest, --risk-tier)"
            " or edit the card\n"
        )
    return 1 if issues else 0
