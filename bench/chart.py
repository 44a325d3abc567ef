"""bench/results/image-sizes.png: the image's size beside the article's base images, compressed
with compressed: the article gives Docker Hub's sizes, which are what is pulled."""

from __future__ import annotations

from bench.article import ARTICLE_IMAGES, ARTICLE_URL, GO_ORIGINAL, GO_ORIGINAL_COMPRESSED


def chart(r: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(name, size, "article") for name, size in ARTICLE_IMAGES]
    rows.append((GO_ORIGINAL[0], GO_ORIGINAL_COMPRESSED, "go"))
    rows.append(
        (
            f"tinyapi (this port, measured {r['when'][:10]})",
            r["sizes"]["image_compressed_bytes"],
            "tinyapi",
        )
    )
    rows.sort(key=lambda row: row[1])
    colors = {"article": "#9e9e9e", "go": "#1f77b4", "tinyapi": "#2ca02c"}
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    ax.barh(
        [row[0] for row in rows],
        [row[1] / 1e6 for row in rows],
        color=[colors[row[2]] for row in rows],
    )
    for i, row in enumerate(rows):
        label = f"{row[1] / 1e6:.2f} MB" if row[1] < 10e6 else f"{row[1] / 1e6:.0f} MB"
        ax.text(row[1] / 1e6 * 1.05, i, label, va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(0.3, 200)
    ax.set_xlabel("image size compressed (what is pulled), MB (10^6 bytes), log scale")
    ax.set_title("Image sizes, compressed: the article's base images, the Go original, this port")
    fig.text(
        0.01,
        0.01,
        f"Base images: the article's table, Docker Hub's sizes ({ARTICLE_URL}). "
        "Go original and tinyapi: `docker save | gzip -6 | wc -c` here.",
        fontsize=6.5,
        color="#555555",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
