"""spark-submit entry point for the whole pipeline (``shikong run``): every stage in order.

    spark-submit ... jobs/run.py --config conf/cluster-small.yaml [--only STAGE,...]
"""

import sys

from shikong.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", *sys.argv[1:]]))
