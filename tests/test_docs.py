"""The reference tables of docs/ that come from code (the config keys, the image's files, the
test markers, the make targets) say what the code says: `make docs` regenerates them."""

from harness import docs


def test_every_generated_table_matches_the_code():
    assert docs.stale() == [], "stale tables in docs/: run `make docs` and commit"


def test_the_config_table_names_every_key():
    text = (docs.ROOT / "docs" / "configuration.md").read_text()
    for section, key, _, _ in docs.config.keys():
        assert f"| `{section}.{key}` |" in text
