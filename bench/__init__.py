"""tinyapi's benchmarks: `make bench` (python -m bench) and `make soak` (python -m bench.soak).

  __main__      the run: sections in order, results written, targets printed
  lib           the library the other programs use: commands, timing, a tinyapi timed to its 200
  baselines     the images tinyapi's is measured against: busybox httpd, the server from source
  preflight     what a run needs first: root, wrk, a Docker engine
  article       the article's table of base images, and the Go original
  sizes         the image, the binary, and what is inside the binary
  startup       start to first 200, on the host and with `docker run`
  memory        Pss of a container's processes
  wrk           wrk runs and their figures
  steady_state  memory and throughput on one running container
  build         clean and no-change `make binary`
  targets       issues 4's and 16's targets and the measured values against them
  report        bench/results/latest.md
  chart         bench/results/image-sizes.png

bench/README.md says what each number means and how it is taken.
"""
