"""The ``pidns`` command line: argparse, dispatch, one error handler, renderers."""
