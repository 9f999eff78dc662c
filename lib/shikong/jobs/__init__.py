"""Job entry points: each module exposes ``main(argv=None)`` for spark-submit."""
