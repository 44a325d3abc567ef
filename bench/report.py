"""bench/results/latest.md: the results as Markdown."""

from __future__ import annotations

from bench.article import GO_ORIGINAL, GO_ORIGINAL_COMPRESSED
from bench.probe import BUDGET
from bench.targets import fmt_value


def ms(s: dict, scale=1000.0, digits=0) -> str:
    return (
        f"{s['median'] * scale:,.{digits}f} ({s['min'] * scale:,.{digits}f} - "
        f"{s['max'] * scale:,.{digits}f})"
    )


def heading(title: str) -> list[str]:
    """A section's first lines: its title, then a blank line."""
    return [f"## {title}", ""]


def to_markdown(r: dict) -> str:
    lines = [
        f"# tinyapi benchmark: {r['when']}",
        "",
        f"Commit `{r['commit']}`{' + uncommitted changes' if r['dirty'] else ''}, "
        f"{r['machine']['cpus']} CPUs, Linux {r['machine']['kernel']}, "
        f"Docker {r['machine']['docker']}; 1-minute load average when it began: "
        f"{r['machine']['loadavg_before']:.1f}. `make bench` ({'quick' if r['settings']['quick'] else 'full'} run): "
        f"each timing is the median of {r['settings']['runs']} runs, (min - max) beside it; "
        "compared commands ran interleaved. How each number is taken: [bench/README.md](../README.md).",
        "",
    ]
    if r["targets"]:
        lines += [*heading("Targets"), "| target | limit | measured | met |", "|---|---|---|---|"]
        for t in r["targets"]:
            limit = ("<= " if t["kind"] == "max" else ">= ") + fmt_value(t["limit"], t["unit"])
            lines.append(
                f"| {t['target']} | {limit} | {fmt_value(t['measured'], t['unit'])} | "
                f"{'yes' if t['met'] else '**no**'} |"
            )
        lines.append("")
    if "sizes" in r:
        s = r["sizes"]
        lines += [
            *heading("Sizes"),
            f"- image `{s['image']}`: **{s['image_bytes']:,} bytes** unpacked "
            f"({s['image_bytes'] / 1e6:.2f} MB, as `docker images` counts), "
            f"**{s['image_compressed_bytes']:,} bytes** compressed "
            f"({s['image_compressed_bytes'] / 1e6:.2f} MB, `docker save | gzip -6`: what is pulled); "
            f"the Go original: {GO_ORIGINAL[1] / 1e6:.2f} MB unpacked, "
            f"{GO_ORIGINAL_COMPRESSED / 1e6:.2f} MB compressed",
            *[
                f"- linux/{arch}, `{p['image']}`: {p['image_bytes']:,} bytes unpacked, "
                f"{p['image_compressed_bytes']:,} bytes compressed"
                for arch, p in s.get("platforms", {}).items()
            ],
            f"- binary `/bin/tinyapi` of the image: **{s['binary_bytes']:,} bytes**: staticx bootloader (patched) "
            f"{s['staticx_bootloader_bytes']:,} + {s['staticx_archive_compression']} archive "
            f"{s['staticx_archive_bytes']:,} (unpacked at the first start: "
            f"{s['staticx_archive_raw_bytes']:,} bytes)",
            "",
            "Files of the image:",
            "",
            "| file | bytes |",
            "|---|---:|",
        ]
        lines += [f"| `{f['path']}` | {f['bytes']:,} |" for f in s["image_files"]]
        lines += [
            "",
            "Inside the binary, by part: *stored* is the bytes unpacked at the first start, "
            "*zstd* each part compressed alone as the recipe compresses the archive (what it "
            "costs in the binary, roughly; the parts of one frame share a little).",
            "",
            "| part | stored | zstd | share of zstd |",
            "|---|---:|---:|---:|",
        ]
        packed_total = sum(c["zstd"] for c in s["categories"].values())
        for cat, c in sorted(s["categories"].items(), key=lambda kv: -kv[1]["zstd"]):
            lines.append(
                f"| **{cat}** | **{c['raw']:,}** | **{c['zstd']:,}** | "
                f"**{c['zstd'] / packed_total:.0%}** |"
            )
            for p in sorted(
                (p for p in s["parts"] if p["category"] == cat), key=lambda p: -p["zstd"]
            ):
                lines.append(
                    f"| &nbsp;&nbsp;{p['item']} | {p['raw']:,} | {p['zstd']:,} | "
                    f"{p['zstd'] / packed_total:.1%} |"
                )
        lines += [
            f"| total | {sum(c['raw'] for c in s['categories'].values()):,} | {packed_total:,} | |",
            "",
            "![image sizes](image-sizes.png)",
            "",
        ]
    if "startup_host" in r or "startup_docker" in r:
        lines += [
            *heading("Start-up (ms, to the first 200)"),
            "| what | median (min - max) |",
            "|---|---:|",
        ]
        if "startup_host" in r:
            h = r["startup_host"]
            lines += [
                f"| `dist/tinyapi` on the host (its unpacked copy reused) | {ms(h['frozen_s'])} |",
                f"| `dist/tinyapi` on the host, first start (unpacking, a new TMPDIR each run) | "
                f"{ms(h['frozen_first_s'])} |",
                f"| `.venv/bin/python -m tinyapi` on the host | {ms(h['source_s'])} |",
                f"| ratio frozen / source | {h['ratio']:.2f}x (first start {h['ratio_first']:.2f}x) |",
            ]
            for kind, d in h.get("decode", {}).items():
                lines.append(
                    f"| decoding staticx's {kind} archive alone ({d['archive_bytes']:,} B) | {ms(d['s'])} |"
                )
        if "startup_docker" in r:
            d = r["startup_docker"]
            lines += [
                f"| `docker run -d` {d['image']} | {ms(d['tinyapi_s'])} |",
                f"| `docker run -d` the same server from source in a container (Debian's Python, a venv) "
                f"| {ms(d['source_s'])} |",
                f"| `docker run -d` busybox httpd FROM scratch ({d['busybox_image_bytes']:,} B image), "
                f"Docker's floor | {ms(d['busybox_s'])} |",
                f"| ratio tinyapi / source in a container | {d['ratio']:.2f}x |",
                f"| ratio tinyapi / busybox, source / busybox | {d['ratio_busybox']:.2f}x, "
                f"{d['source_ratio_busybox']:.2f}x |",
                f"| `docker stop` of tinyapi | {ms(r['docker_stop_s'])} |",
            ]
        lines.append("")
    if "memory" in r:
        m = r["memory"]
        lines += [
            *heading("Memory of the container (MB, summed over its processes)"),
            "| when | Pss | Pss anon | Pss file | Rss | processes |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, key in (
            ("idle (after start-up)", "idle"),
            ("after 10,000 requests", "after_10k"),
            (f"after {m['requests']:,} requests", "after_100k"),
        ):
            x = m[key]
            lines.append(
                f"| {label} | {x['pss_mb']:.1f} | {x['pss_anon_mb']:.1f} | {x['pss_file_mb']:.1f} | "
                f"{x['rss_mb']:.1f} | {len(x['processes'])} |"
            )
        lines += [
            "",
            f"Growth: {m['growth_pct']:+.1f} % from idle, {m['growth_after_warmup_pct']:+.1f} % "
            "after the first 10,000 requests.",
            "",
            "Pss per process, idle: "
            + ", ".join(f"{p['role']} {p['Pss'] / 1024:.1f}" for p in m["idle"]["processes"])
            + " MB; after the requests: "
            + ", ".join(f"{p['role']} {p['Pss'] / 1024:.1f}" for p in m["after_100k"]["processes"])
            + " MB.",
            "",
        ]
    if "throughput" in r:
        t = r["throughput"]
        lines += [
            *heading("Throughput (wrk -t2 -c32 --latency)"),
            "| where | path | seconds | req/s | p50 ms | p99 ms | errors (all runs) |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        rows = [("container, published port", p, x) for p, x in t.get("docker", {}).items()]
        rows += [
            (f"host, {name}", "/alwaysok", t["host"][name])
            for name in ("frozen", "source")
            if "host" in t
        ]
        for where, path, x in rows:
            errors = sum(run_["errors"] for run_ in x["runs"])
            lines.append(
                f"| {where} | `{path}` | {x['seconds']:g} | {ms(x['rps'], 1, 0)} | "
                f"{ms(x['p50_ms'], 1, 2)} | {ms(x['p99_ms'], 1, 2)} | {errors} |"
            )
        if "host" in t:
            lines += [
                "",
                f"Frozen vs source on the host: {t['host']['frozen_vs_source_pct']:+.1f} % "
                "(positive: the frozen binary is slower).",
            ]
        lines.append("")
    if "probe" in r:
        lines += probe_section(r["probe"])
    if "build" in r:
        b = r["build"]
        lines += [
            *heading("Build (`make binary`, s)"),
            "| what | median (min - max) |",
            "|---|---:|",
            f"| clean (no dist: no PyInstaller work dir, no bootloader), {len(b['clean_s']['runs'])} runs | {ms(b['clean_s'], 1, 1)} |",
            f"| nothing changed, {len(b['nochange_s']['runs'])} runs | {ms(b['nochange_s'], 1, 2)} |",
            "",
            f"Reproducible: {'yes' if b['reproducible'] else '**no**'}: the clean builds gave "
            f"{', '.join('`' + d[:16] + '`' for d in b['sha256'])}; dist/tinyapi is `{b['dist_sha256'][:16]}`.",
            "",
        ]
    return "\n".join(lines)


def probe_section(r: dict) -> list[str]:
    """The cost of one `tinyapi probe`, and the share of one core at the HEALTHCHECK's interval."""
    host, image, share = r["host"], r["image"], r["healthcheck"]

    def mb(s: dict) -> str:
        return f"{s['median'] / 1e6:.1f}"

    image_memory = mb(image["memory_peak_bytes"]) if "memory_peak_bytes" in image else "n/a"
    return [
        *heading("Health check: one `tinyapi probe`"),
        "| per probe | `dist/tinyapi probe`, host | `docker exec … probe`, hardened run |",
        "|---|---:|---:|",
        f"| wall time (ms) | {ms(host['wall_s'])} | {ms(image['wall_s'])} |",
        f"| CPU time (ms): the probe's processes; the container's cgroup | {ms(host['cpu_s'])} | "
        f"{ms(image['cpu_s'])} |",
        f"| CPU time (ms) of the engine: dockerd, containerd, the shim | | {ms(image['engine_cpu_s'])} |",
        f"| peak memory (MB): the largest process's RSS; the container's above idle | "
        f"{mb(host['maxrss_bytes'])} | {image_memory} |",
        f"| bytes written to /tmp, at the peak | {host['tmp_peak_bytes']['median']:,.0f} | "
        f"{image['tmp_peak_bytes']['median']:,.0f} |",
        f"| bytes left in /tmp after it ended (max) | {host['tmp_left_bytes']['max']:,.0f} | "
        f"{image['tmp_left_bytes']['max']:,.0f} |",
        f"| the server's own copy in /tmp, for comparison | {host['server_tmp_bytes']:,} | "
        f"{image['server_tmp_bytes']:,} |",
        "",
        f"At the Dockerfile's `HEALTHCHECK --interval={share['interval_s']:.0f}s` the probes cost "
        f"{share['cpu_per_probe_s'] * 1000:.0f} ms of CPU each (container + engine): "
        f"**{share['share_of_one_core'] * 100:.2f} % of one core** (budget {BUDGET * 100:.0f} %; "
        f"the shortest interval within it: {share['shortest_interval_within_budget_s']:.1f} s).",
        "",
    ]
