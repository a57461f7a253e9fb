"""The closing lines of a run for one source: files converted and failed, rasters skipped, where the outputs are."""

from __future__ import annotations

from pathlib import Path

from tilewise.sources import ledger


def source_lines(name: str, ledgers: list[Path], outputs: dict[str, Path]) -> list[str]:
    """`outputs` names the source's output paths (bounds, coverage, failures, tarball, …)."""
    done = [p for p in ledgers if p.exists()]
    files = converted = failed = cogs = skipped = warnings = excluded = 0
    for path in done:
        try:
            record = ledger.read(path)
        except ledger.LedgerError:
            continue
        files += len(record.files)
        failed += len(record.failures())
        converted += sum(1 for r in record.files if r["status"] == "ok")
        excluded += sum(1 for r in record.files if r["status"] == "excluded")
        cogs += len(record.outputs())
        kinds = [note["kind"] for _, note in record.skipped()]
        skipped += kinds.count("skipped")
        warnings += kinds.count("warning")
    head = f"source {name}: {converted} of {files} files converted into {cogs} COGs, {failed} failed"
    if excluded:  # a pattern that matched more than meant must not look like an empty download
        every = " (every file)" if excluded == files else ""
        head += f", {excluded} with nothing left after the recipe's `exclude`{every}"
    if skipped or warnings:
        head += f"; {skipped} rasters inside them skipped, {warnings} converted with a warning (see skipped.csv)"
    if len(done) < len(ledgers):
        head += f" ({len(ledgers) - len(done)} of {len(ledgers)} chunks not prepared yet)"
    lines = [head]
    for what, path in outputs.items():
        lines.append(f"  {what:<9} {path}{'' if path.exists() else '  (not written)'}")
    return lines
