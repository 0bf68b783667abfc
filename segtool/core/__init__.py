"""Conventions shared by every command: errors, console, device, I/O, paths."""
