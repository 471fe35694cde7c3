"""Bulk packs made in the background: progress as they are written, the zip for the
sign-in that started them only, a bound on how many run, and old ones forgotten."""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ztsim.errors import Conflict, NotFound
from ztsim.esim.activation import ActivationCode
from ztsim.esim.pack import PackPage
from ztsim.web import onboarding_jobs
from ztsim.web.onboarding_jobs import PackJob, PackJobs, Progress


def _pages(count: int) -> list[PackPage]:
    code = ActivationCode("smdp.example.test", "ABCDE-FGHJK-MNPQR-STVWX-YZ012", None, False)
    expires = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=1)
    return [PackPage(f"Person {n}", "Org", code, expires, f"{n:032x}") for n in range(count)]


def _finished(job: PackJob) -> Progress:
    deadline = time.monotonic() + 30
    while not (progress := job.progress()).finished:
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.02)
    return progress


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_job_counts_its_packs_and_keeps_the_zip_for_its_owner() -> None:
    jobs = PackJobs()
    job = jobs.start("org", "token-a", _pages(3), ordered=2, skipped=["Late Person"])
    done = _finished(job)
    assert done == Progress(3, 3, finished=True, failed=False)
    assert done.percent == 100
    body = jobs.get("org", "token-a", job.id).zip()
    assert body is not None
    assert len(zipfile.ZipFile(io.BytesIO(body)).namelist()) == 12
    assert job.skipped == ["Late Person"]
    for org, owner in (("org", "token-b"), ("other", "token-a")):
        with pytest.raises(NotFound):
            jobs.get(org, owner, job.id)
    with pytest.raises(NotFound):
        jobs.get("org", "token-a", "no-such-job")


def test_progress_is_seen_while_the_packs_are_written() -> None:
    jobs = PackJobs()
    # A PDF and a QR code each: long enough to be seen part-way on any machine.
    job = jobs.start("org", "me", _pages(16), ordered=16, skipped=[])
    other = jobs.start("org", "me", _pages(16), ordered=16, skipped=[])
    assert onboarding_jobs.MAX_RUNNING == 2
    with pytest.raises(Conflict):
        jobs.check_room()
    with pytest.raises(Conflict):
        jobs.start("org", "me", _pages(1), ordered=1, skipped=[])
    seen: set[int] = set()
    while not (progress := job.progress()).finished:
        seen.add(progress.done)
        assert job.zip() is None
        time.sleep(0.005)
    assert any(0 < done < 16 for done in seen), seen
    assert _finished(job).done == 16
    assert _finished(other).finished
    jobs.check_room()  # room again
    jobs.start("org", "me", _pages(1), ordered=1, skipped=[])


def test_a_failed_job_says_so() -> None:
    # A privacy notice longer than a page: the one-page PDF refuses it.
    [page] = _pages(1)
    too_long = replace(page, dns_notice="Recorded. " * 2000)
    job = PackJobs().start("org", "me", [too_long], ordered=1, skipped=[])
    progress = _finished(job)
    assert progress.failed
    assert progress.done == 0
    assert job.zip() is None


def test_finished_jobs_are_forgotten_when_old_or_too_many() -> None:
    clock = _Clock()
    jobs = PackJobs(clock)
    old = jobs.start("org", "me", _pages(0), ordered=0, skipped=[])
    _finished(old)
    clock.now += onboarding_jobs.KEPT_FOR_SECONDS + 1
    with pytest.raises(NotFound):
        jobs.get("org", "me", old.id)
    kept = []
    for _ in range(onboarding_jobs.MAX_KEPT + 2):
        job = jobs.start("org", "me", _pages(0), ordered=0, skipped=[])
        _finished(job)
        kept.append(job)
        clock.now += 1
    jobs.get("org", "me", kept[-1].id)
    with pytest.raises(NotFound):
        jobs.get("org", "me", kept[0].id)
