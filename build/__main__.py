"""`python build [SUBCOMMAND ...]` from the repository's root: the binary's recipe
(build/recipe/). Running the directory puts build/ first on sys.path, so `recipe` imports
as it is, and nothing here shadows PyPA's `build` package."""

import sys

from recipe.cli import main

sys.exit(main())
