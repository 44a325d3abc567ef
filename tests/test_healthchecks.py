"""The outbound checks against local targets: up, 404, refused, silent, untrusted."""

import re
import time

from tinyapi import healthchecks
from tinyapi.healthchecks import STATUS_FAILED, STATUS_NOT_OK, STATUS_OK

RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def test_https_200_with_the_configured_ca(https_target, ca_file):
    r = healthchecks.check("hc", https_target.url("/ok"), 5, ca_file)
    assert (r.status, r.completed, r.verbose) == (STATUS_OK, True, "200 OK")
    assert RFC3339_NANO.match(r.date)


def test_http_404_is_status_2(http_target):
    r = healthchecks.check("hc", http_target.url("/some404"), 5)
    assert (r.status, r.completed, r.verbose) == (STATUS_NOT_OK, True, "404 Not Found")


def test_refused_is_status_3_not_a_crash(refused_url):
    r = healthchecks.check("hc", refused_url, 5)
    assert (r.status, r.completed) == (STATUS_FAILED, False)
    assert r.verbose.startswith(f"GET {refused_url}: ") and "refused" in r.verbose


def test_untrusted_certificate_fails_closed(untrusted_https_target, ca_file):
    r = healthchecks.check("hc", untrusted_https_target.url("/ok"), 5, ca_file)
    assert (r.status, r.completed) == (STATUS_FAILED, False)
    assert "CERTIFICATE_VERIFY_FAILED" in r.verbose


def test_bundled_ca_does_not_trust_a_test_ca(https_target):
    # No ca_file: the CA bundle frozen into the program, which knows nothing of our test CA.
    r = healthchecks.check("hc", https_target.url("/ok"), 5)
    assert r.status == STATUS_FAILED and "CERTIFICATE_VERIFY_FAILED" in r.verbose


def test_silent_target_times_out(silent_target):
    r = healthchecks.check("hc", silent_target, 0.5)
    assert (r.status, r.completed) == (STATUS_FAILED, False)
    assert "timed out" in r.verbose


def test_checks_run_concurrently_each_with_its_deadline(silent_target, http_target):
    started = time.monotonic()
    results = healthchecks.run_all(
        [
            ("healthcheck1", silent_target),
            ("healthcheck2", silent_target),
            ("healthcheck3", http_target.url("/ok")),
        ],
        timeout=1.0,
    )
    elapsed = time.monotonic() - started
    assert [r.name for r in results] == ["healthcheck1", "healthcheck2", "healthcheck3"]
    assert [r.status for r in results] == [STATUS_FAILED, STATUS_FAILED, STATUS_OK]
    # One after the other, two silent targets would take 2 s.
    assert elapsed < 1.9


def test_rfc3339_nano_format():
    assert healthchecks.rfc3339_nano(1489312800_123456789) == "2017-03-12T10:00:00.123456789Z"
    assert healthchecks.rfc3339_nano(1489312800_120000000) == "2017-03-12T10:00:00.12Z"
    assert healthchecks.rfc3339_nano(1489312800_000000000) == "2017-03-12T10:00:00Z"
