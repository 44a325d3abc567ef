"""The article's table of base images, and the Go original's image: what tinyapi's size is
shown beside (the chart, `make inspect`)."""

# The article's table ("Building Tiny Secure Docker Containers", linuxctl.com, base images on
# Docker Hub as of its writing), in bytes (10^6): Docker Hub's sizes, compressed, what is
# pulled. GO_ORIGINAL is the Go original's image unpacked, as `docker images` counts it.
ARTICLE_URL = "https://linuxctl.com/p/building-tiny-secure-docker-containers/"
ARTICLE_IMAGES = [
    ("CentOS 7", 70e6),
    ("CentOS 6", 69e6),
    ("Debian 9", 42e6),
    ("Debian 8", 51e6),
    ("Debian 7", 36e6),
    ("Ubuntu 16.10", 41e6),
    ("Ubuntu 16.04", 50e6),
    ("Ubuntu 14.04", 66e6),
    ("OpenSuse 42.2", 48e6),
    ("OpenSuse 42.1", 38e6),
    ("Alpine 3.5", 2e6),
    ("Alpine 3.4", 2e6),
    ("busybox 1.26-musl", 723e3),
]
GO_ORIGINAL = ("go-tinyapi (the original, FROM scratch)", 9.58e6)
# The same image compressed (`docker save | gzip -6 | wc -c`, measured in issue 16): Docker
# Hub's sizes, as in the article's table, are compressed ones.
GO_ORIGINAL_COMPRESSED = 5_413_578


def beside_the_article(label: str, compressed: int) -> list[str]:
    """Text bars, largest first: an image's compressed size beside the article's base images and
    the Go original's, compressed too (like with like), for `make tour` and `make inspect`."""
    rows = [*ARTICLE_IMAGES, (GO_ORIGINAL[0], GO_ORIGINAL_COMPRESSED), (label, compressed)]
    widest = max(size for _, size in rows)
    return [
        f"  {name:<42} {size / 1e6:>6.2f} MB  {'#' * max(1, round(40 * size / widest))}"
        for name, size in sorted(rows, key=lambda row: -row[1])
    ]
