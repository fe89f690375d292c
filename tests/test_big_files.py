"""A big file is read, checked and written in chunks: memory does not grow with it."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from tests.conftest import read_results

# Runs the command in a child and prints the child's peak RSS (KiB) on the last line.
MEASURE = (
    "import resource, subprocess, sys\n"
    "subprocess.run([sys.executable, '-m', 'affelios_import', *sys.argv[1:]], check=False)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def big_export(path: Path, rows: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["externalId", "externalBrandId", "registrationDate", "clickId", "name"])
        for i in range(rows):
            writer.writerow([f"C{i:09d}", "casino-x", "2025-06-28T19:29:48.174Z", f"k{i}", "x"])
    return path


def peak_kib(source: Path, tmp_path: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(source), "--dry-run", "--journal",
         str(tmp_path / "j.db"), "-q"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    # Past a few chunks, memory holds steady but for the keys seen so far, kept as 12-byte
    # hashes: about 30 MB more for 900,000 more rows here, allocator slack included.
    # Keeping each key as text would add about 135 MB; the whole file, about 300 MB.
    small = big_export(tmp_path / "small.csv", 100_000)
    large = big_export(tmp_path / "large.csv", 1_000_000)
    small_kib = peak_kib(small, tmp_path)
    large_kib = peak_kib(large, tmp_path)
    assert large_kib - small_kib < 70 * 1024, (small_kib, large_kib)
    results = read_results(tmp_path / "large.dry-run.results.csv")
    assert len(results) == 1_000_000
    assert [r["row"] for r in results[::333_333]] == ["1", "333334", "666667", "1000000"]
    assert results[-1]["externalId"] == "C000999999"


def test_a_results_workbook_is_refused_before_anything_when_the_rows_do_not_fit(
    tmp_path: Path,
) -> None:
    source = tmp_path / "big.csv"
    with source.open("w", encoding="utf-8") as f:  # one row more than a sheet holds
        f.write("externalId,externalBrandId,registrationDate\n")
        f.writelines(f"C{i},b,2025-06-28T19:29:48Z\n" for i in range(1_048_576))
    out = tmp_path / "results.xlsx"
    done = subprocess.run(
        [sys.executable, "-m", "affelios_import", str(source), "--dry-run", "--journal", ":memory:",
         "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"affelios-import: --out {out}: 1,048,576 rows do not fit in a workbook (Excel's "
        "sheets hold 1,048,575 rows below the header); write a .csv instead"
    )
    assert not out.exists()
