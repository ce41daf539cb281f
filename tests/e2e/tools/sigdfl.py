#!/usr/bin/env python3
"""sigdfl.py CMD [ARGS...]: exec CMD with SIGINT and SIGQUIT reset to their
default actions. A non-interactive shell starts background jobs with them
ignored; a program run from a terminal (where a user presses Ctrl-C) has them
at their defaults, which is what the tests want to reproduce."""
import os
import signal
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGQUIT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])
