"""``python -m taskiq_sqs_http.cli``: the same as the ``taskiq-sqs`` console script."""

from . import console_main

console_main()
