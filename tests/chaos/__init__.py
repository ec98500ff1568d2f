"""Fault-injection and soak suite: a faulty proxy in front of MiniStack, real worker subprocesses."""
