"""Experiments built on the commands: DAgger rounds and the learning table, each with a frozen config."""
