"""Issues 4's, 16's and 22's targets, and the measured values checked against them (reported, never
failed on)."""

from __future__ import annotations

from bench.article import GO_ORIGINAL_COMPRESSED
from harness.image import MAX_IMAGE_BYTES

# The targets: (key, label, limit, unit, "max"|"min").
TARGETS = [
    ("image_bytes", "image size, unpacked (`docker images`)", MAX_IMAGE_BYTES, "MB", "max"),
    (
        "image_compressed_bytes",
        "image size, compressed (`docker save | gzip -6`)",
        MAX_IMAGE_BYTES,
        "MB",
        "max",
    ),
    (
        "image_compressed_vs_go",
        "image size, compressed, below the Go original's",
        GO_ORIGINAL_COMPRESSED - 1,
        "MB",
        "max",
    ),
    ("payload_bytes", "payload unpacked at a first start", 16.5e6, "MB", "max"),
    ("image_bytes_arm64", "linux/arm64 image size, unpacked", MAX_IMAGE_BYTES, "MB", "max"),
    ("startup_ratio_host", "frozen start to first 200 / from source, host", 1.15, "x", "max"),
    (
        "startup_ratio_host_first",
        "the same, at the binary's first start (unpacking)",
        1.15,
        "x",
        "max",
    ),
    (
        "startup_ratio_docker",
        "`docker run` to first 200 / the server from source in a container",
        1.1,
        "x",
        "max",
    ),
    ("container_processes", "processes in the container, default workers", 4, "", "max"),
    ("memory_idle_mb", "idle memory of the container (Pss)", 45.0, "MB", "max"),
    ("memory_growth_pct", "growth after 100,000 requests", 10.0, "%", "max"),
    ("rps_alwaysok", "/alwaysok req/s (wrk -t2 -c32 -d10s)", 2000.0, "req/s", "min"),
    ("errors_alwaysok", "/alwaysok errors", 0, "", "max"),
    ("p99_alwaysok_ms", "/alwaysok p99", 50.0, "ms", "max"),
    ("frozen_vs_source_pct", "frozen req/s vs source, on the host", 5.0, "% slower", "max"),
    (
        "build_clean_s",
        "clean `make binary`, interpreter and bootloader included",
        600.0,
        "s",
        "max",
    ),
    ("build_nochange_s", "no-change `make binary`", 5.0, "s", "max"),
]


def measured_values(r: dict) -> dict:
    out = {}
    if "sizes" in r:
        out["image_bytes"] = r["sizes"]["image_bytes"]
        out["image_compressed_bytes"] = r["sizes"]["image_compressed_bytes"]
        out["image_compressed_vs_go"] = r["sizes"]["image_compressed_bytes"]
        out["payload_bytes"] = r["sizes"]["staticx_archive_raw_bytes"]
        if "arm64" in r["sizes"].get("platforms", {}):
            out["image_bytes_arm64"] = r["sizes"]["platforms"]["arm64"]["image_bytes"]
    if "startup_host" in r:
        out["startup_ratio_host"] = r["startup_host"]["ratio"]
        out["startup_ratio_host_first"] = r["startup_host"]["ratio_first"]
    if "startup_docker" in r:
        out["startup_ratio_docker"] = r["startup_docker"]["ratio"]
    if "memory" in r:
        out["container_processes"] = len(r["memory"]["idle"]["processes"])
        out["memory_idle_mb"] = r["memory"]["idle"]["pss_mb"]
        out["memory_growth_pct"] = r["memory"]["growth_pct"]
    docker = r.get("throughput", {}).get("docker", {})
    if "/alwaysok" in docker:
        out["rps_alwaysok"] = docker["/alwaysok"]["rps"]["median"]
        out["errors_alwaysok"] = sum(x["errors"] for x in docker["/alwaysok"]["runs"])
        out["p99_alwaysok_ms"] = docker["/alwaysok"]["p99_ms"]["median"]
    host = r.get("throughput", {}).get("host")
    if host:
        out["frozen_vs_source_pct"] = host["frozen_vs_source_pct"]
    if "build" in r:
        out["build_clean_s"] = r["build"]["clean_s"]["median"]
        out["build_nochange_s"] = r["build"]["nochange_s"]["median"]
    return out


def check_targets(r: dict) -> list[dict]:
    values = measured_values(r)
    rows = []
    for key, label, limit, unit, kind in TARGETS:
        if key not in values:
            continue
        v = values[key]
        met = v <= limit if kind == "max" else v >= limit
        rows.append(
            {
                "key": key,
                "target": label,
                "limit": limit,
                "unit": unit,
                "kind": kind,
                "measured": v,
                "met": met,
            }
        )
    return rows


def fmt_value(v: float, unit: str) -> str:
    if unit == "MB" and v > 1e5:
        return f"{v / 1e6:.2f} MB"
    if unit in ("req/s",):
        return f"{v:,.0f} req/s"
    if unit == "x":
        return f"{v:.2f}x"
    if unit in ("%", "% slower"):
        return f"{v:+.1f} %" if unit == "% slower" else f"{v:.1f} %"
    if unit == "":
        return f"{v:g}"
    return f"{v:.1f} {unit}" if isinstance(v, float) else f"{v} {unit}"
