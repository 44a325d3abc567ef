"""Helpers shared by the project's tools and tests (build, bench, docker, deploy, tests): one
home for each rule they share. Installed into the venv by `make venv`; never frozen into the
binary (build/tinyapi.spec freezes the tinyapi package only)."""
