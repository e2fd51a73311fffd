"""What spans every study: the config as every entry point loads it (config.py) and its command line."""
