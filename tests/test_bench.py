"""The benchmark scripts still run and print their figures (tiny sizes; the timings are not checked)."""

import re
import subprocess
import sys
import time

import pytest

from conftest import REPO

pytestmark = pytest.mark.workflow


def run_bench(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def figure(out: str, label: str) -> str:
    m = re.search(rf"^{label}\s+(.+)$", out, re.M)
    assert m, f"no line {label!r} in:\n{out}"
    return m[1]


def test_source_pipeline_bench_measures_both_sides():
    out = run_bench("bench/source_pipeline.py", "--files", "12", "--px", "64", "--repeat", "2")
    assert len(re.findall(r"^run \d: floor [\d.]+ s, workflow [\d.]+ s$", out, re.M)) == 2
    assert float(figure(out, "ratio workflow/floor")) > 0
    assert figure(out, "jobs") == "8"  # 4 chunks, merge, tarball, map, all
    assert figure(out, "working-set bound").endswith("peak ≤ final + bound: yes")


def test_biomass_county_bench_reports_its_targets():
    out = run_bench("bench/biomass_county.py", "--parcels", "300", "--workers", "1", "--km", "8")
    assert figure(out, "parcels").replace(",", "").isdigit()
    assert float(figure(out, "parcels per second").split()[0].replace(",", "")) > 0
    assert float(figure(out, "bytes read, median parcel").split()[0]) > 0


def test_biomass_state_bench_measures_every_stage_and_both_floors():
    out = run_bench("bench/biomass_state.py", "--small")
    for label in ("stage index", "stage tiles", "stage counties and state"):
        assert figure(out, label).endswith(" MB")  # seconds and peak RSS
    assert float(figure(out, r"ratio tiles/floor").split()[0]) > 0
    assert float(figure(out, r"ratio counties/floor").split()[0]) > 0
    assert figure(out, "blocks read again") == "0"
    assert figure(out, r"peak disk \(sampled\)").endswith("within: yes")


def test_store_check_bench_finds_the_damage_it_makes():
    out = run_bench("bench/store_check.py", "--files", "200", "--chunks", "8", "--repeat", "1")
    assert float(figure(out, r"check with the store index").split()[0]) > 0
    assert figure(out, "damage found") == "0001, 0007"  # the deleted COG's chunk and the cut-off ledger


def test_refresh_bench_finds_nothing_changed_and_measures_its_floor():
    out = run_bench("bench/refresh.py", "--files", "300", "--repeat", "1")
    assert figure(out, "files").startswith("300 URLs in 4 chunks")
    assert float(figure(out, r"floor \(bare HEAD thread pool\)").split()[0]) > 0
    assert float(figure(out, "refresh check").split()[0]) > 0
    assert figure(out, "changed") == "none found"


def test_huge_raster_bench_measures_floor_and_both_recipes():
    out = run_bench("bench/huge_raster.py", "--px", "1200", "--slice-px", "1024")
    assert re.search(r"^workflow, slice_px 1024\s+[\d.]+\s+\d+\s+4$", out, re.M)  # 2 × 2 slices
    assert figure(out, "peak RSS of any job").endswith("yes")


def test_plan_scale_bench_dry_runs_a_long_list():
    out = run_bench("bench/plan_scale.py", "--urls", "3000", "--repeat", "1")
    assert re.search(r"^3,000 URLs\s+[\d.]+\s+[\d.]+\s+\d+$", out, re.M)
    assert float(figure(out, "planning per URL").split()[0]) != 0


def test_slow_server_bench_throttles_both_sides():
    """With `--against`, another checkout's workflow runs in the same rounds (here this one's again)."""
    tiny = ("--files", "8", "--px", "64", "--repeat", "1", "--connections", "4")
    out = run_bench("bench/slow_server.py", *tiny, "--against", str(REPO))
    assert float(figure(out, "ratio workflow/floor").split()[0]) > 0
    assert float(figure(out, f"ratio workflow/floor, {re.escape(REPO.name)}").split()[0]) > 0
    assert figure(out, r"sequential wget \(Mapterhorn\)").endswith("(computed: bytes / rate + latency per file)")


def test_the_disk_sampler_keeps_to_a_small_share_of_a_core(monkeypatch, tmp_path):
    """It runs beside the workflow on the same cores (the floor runs without one): when a walk of the
    folder is long (0.1 s of CPU at 20,000 files), it samples less often instead of taking a core."""
    sys.path.insert(0, str(REPO / "bench"))
    import source_pipeline

    walks = []

    def slow_walk(folder):
        end = time.thread_time() + 0.02
        while time.thread_time() < end:
            pass
        walks.append(folder)
        return len(walks)

    monkeypatch.setattr(source_pipeline, "disk_bytes", slow_walk)
    sampler = source_pipeline.DiskSampler(tmp_path, every=0.01)
    sampler.start()
    time.sleep(1.5)
    sampler.stop.set()
    sampler.join(timeout=5)
    assert not sampler.is_alive(), "a stop waits for no sample"
    assert 1 <= len(walks) <= 3, f"{len(walks)} walks of 0.02 s of CPU in 1.5 s: more than ~2 % of a core"
    assert sampler.peak == len(walks)


def test_coverage_union_bench_proves_its_union_and_measures_union_all():
    out = run_bench("bench/coverage_union.py", "--files", "80", "--px", "64", "--repeat", "1")
    assert float(figure(out, r"union_all \(before\)").split()[0]) > 0
    assert float(figure(out, r"coverage union and proof, 2 threads \(the merge.s\)").split()[0]) > 0
    assert figure(out, "proved:") == "yes"
    assert figure(out, "same polygons, vertex for vertex:") == "yes"
    assert figure(out, "2 threads give the same bytes as 1:") == "yes"
