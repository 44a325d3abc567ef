"""The reference tables of docs/ that come from code (the config keys, the image's files, the
test markers, the make targets) say what the code says: `make docs` regenerates them."""

from harness import docs


def test_every_generated_table_matches_the_code():
    assert docs.stale() == [], "stale tables in docs/: run `make docs` and commit"


def test_a_stale_table_is_named(tmp_path, monkeypatch):
    # The check above can fail: a row gone from a generated table makes it stale, by name.
    for path, _ in docs.TABLES:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((docs.ROOT / path).read_text())
    for name in ("config.yml", "pyproject.toml", "Makefile"):  # what the tables read
        (tmp_path / name).write_text((docs.ROOT / name).read_text())
    page = tmp_path / "docs" / "configuration.md"
    page.write_text(page.read_text().replace("| `server.bind_port` |", "| `server.bind_prot` |"))
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    assert docs.stale() == ["docs/configuration.md: config-keys"]
