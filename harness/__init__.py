"""Helpers shared by the project's tools and tests (build, bench, docker, deploy, tests): one
home for each rule they share. Installed into the venv by `make venv`; never frozen into the
binary (build/tinyapi.spec freezes the tinyapi package only).

  paths     where things are: the repository, dist/tinyapi, the image's name
  epoch     the build's time (SOURCE_DATE_EPOCH), by build/source-date-epoch's rule
  http      a free loopback port (or whether one is), one plain HTTP request, polling
  serve     start tinyapi and wait for its first 200; stop it and everything it forked
  emptyroot the binary run as a FROM scratch image runs it: a root holding only it
  docker    `docker ...`, and the files of an image (export of a created container)
  container the image run on a published port, waited for until its first 200 (docker, podman)
  image     what the image holds, file by file, its user, and its size limit
  digest    the sha256 of a file
  testing   what the tests share that is not a fixture: skip-or-fail, environments
  docs      the reference tables of docs/, generated from the code (python -m harness.docs)
"""
