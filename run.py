"""``python run.py [flags]`` is ``fittracker serve [flags]``."""

import sys

from fittracker.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
