"""Dataset builders: everything generated or shipped inside a package, nothing downloaded.

Builders go through HF `datasets` (`Dataset.from_generator`), cached as Arrow by fingerprint
under the cache folder, so a second run (even in a new process) loads in milliseconds.
"""
