"""The command line: thin commands over library calls. Results go to stdout; progress and logs to stderr."""
